"""Keep native libraries' log lines (LiteRT's "Created TensorFlow Lite XNNPACK delegate", absl) off the terminal
unless `-v` asks for them.

Those libraries write to file descriptor 2 directly, under the progress bar. For the command's run, fd 2 is
pointed at /dev/null and Python's `sys.stderr` (progress bars, warnings, log lines) at a duplicate of the
real one, so everything Python writes still shows and nothing native does. When `sys.stderr` is not the
process's fd 2 (a test capturing it, a caller that replaced it), nothing is changed.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def native_logs_hidden(hide: bool = True) -> Iterator[None]:
    """Within the block, what native code writes to fd 2 is dropped; what Python writes to stderr is not."""
    try:
        owns_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        owns_fd2 = False
    if not hide or not owns_fd2:
        yield
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stderr = open(real, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace", closefd=False)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)
        sys.stderr.close()
        os.close(real)
        sys.stderr = python_stderr
