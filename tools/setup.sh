#!/usr/bin/env bash
# One-step set-up for a fresh machine: a virtual environment in .venv with cycletrans and its test tools.
# torch is installed first, pinned, so that `pip install -e .` does not pull a multi-GB CUDA build on a
# CPU-only machine; on a machine with CUDA, set CYCLETRANS_TORCH="torch" (or any pip spec) to choose.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "${CYCLETRANS_TORCH:-torch==2.13.0}"
.venv/bin/python -m pip install -q -e ".[dev]"
