"""Stage lines for commands that work for minutes without output of their own.

An FPGA build (``python -m hdl.synth``) spends minutes in each tool and a benchmark
(``python -m bench.granularity``) compiles one Verilator model after another; without a word a user
cannot tell a slow step from a hung one. :class:`StageLog` prints one line per stage, prefixed with the
time since the command started::

    [0:00] synthesis (Yosys)
    [2:41] placement (nextpnr)

on a terminal only: redirected to a file or a pipe (CI logs, ``> out.md``) the command stays quiet, so
its real output is not interleaved with progress.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


def hms(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on); ``--:--`` for an unknown time (NaN or infinite)."""
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (a stream without ``isatty``, e.g. a test's buffer, is not)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class StageLog:
    """``[m:ss] text`` lines on ``stream`` (default: ``sys.stderr`` at construction), only if it is a terminal.

    ``enabled`` overrides the terminal test (``False`` silences a library call made by a batch tool).
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since this log was made (the command's start)."""
        return time.monotonic() - self.t0

    def __call__(self, text: str) -> None:
        if self.enabled:
            print(f"[{hms(self.elapsed())}] {text}", file=self.stream, flush=True)
