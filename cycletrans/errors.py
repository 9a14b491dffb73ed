"""Errors a user can cause, and the exit codes the CLI maps them to.

Anything raised as a `CycletransError` is printed by the CLI as one line and never as a traceback; every other
exception is a bug and is allowed to show one.
"""

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # a batch ran, but some items failed (they are listed)
EXIT_USAGE = 2  # bad arguments, missing input, wrong model file: nothing was done
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM, after saving what could be saved


class CycletransError(Exception):
    """A problem the user can fix. The message is one line; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_USAGE


class InputError(CycletransError):
    """A missing, empty or unreadable input (folder, image, video)."""


class ModelError(CycletransError):
    """A model or checkpoint file that is missing, corrupt or of the wrong kind."""


class DeviceError(CycletransError):
    """A device was asked for that this machine does not have."""
