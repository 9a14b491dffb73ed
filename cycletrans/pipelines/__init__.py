"""Pipelines wire media readers → engine → media writers, overlapping I/O with inference in background threads."""
