"""Running many simulation jobs: executors (inline, local processes, Dask) and a progress bar.

Shared by ``bench.sweep``, ``bench.accuracy`` and ``sim.regress``: they split their work into simulation
jobs of a few layers each (one process start-up per job, not per layer) and run them on whichever
executor the user chose.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import multiprocessing
import sys
import time

from golden.progress import hms


class Progress:
    """A one-line progress bar on stderr (a new line per update when stderr is not a terminal)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def update(self, n: int, note: str = "") -> None:
        self.done += n
        frac = self.done / self.total if self.total else 1.0
        el = time.monotonic() - self.t0
        eta = el / frac - el if frac > 0 else float("nan")
        bar = "#" * int(frac * self.width)
        line = (f"[{bar:<{self.width}}] {self.done}/{self.total} runs {100 * frac:3.0f}% "
                f"elapsed {hms(el)} eta {hms(eta)} {note}")
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class InlineExecutor(cf.Executor):
    """``--workers 1``: tasks run in this process, one per :meth:`run_next` call (no pickling, easy to debug).

    ``run_next`` takes the most recently submitted task first, so a build's chunks run right after the
    build and results (and the progress bar) arrive as early as with a pool.
    """

    def __init__(self):
        self._tasks: list[tuple[cf.Future, object, tuple, dict]] = []

    def submit(self, fn, /, *args, **kwargs):
        fut: cf.Future = cf.Future()
        self._tasks.append((fut, fn, args, kwargs))
        return fut

    def run_next(self) -> None:
        if not self._tasks:
            return
        fut, fn, args, kwargs = self._tasks.pop()
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # handed to the caller through the future
            fut.set_exception(e)


@contextlib.contextmanager
def make_executor(workers: int, dask_scheduler: str | None):
    """A ``concurrent.futures`` executor: inline, a local process pool, or a Dask cluster's executor."""
    if dask_scheduler:
        try:
            from distributed import Client
        except ImportError as e:
            raise SystemExit("error: --dask-scheduler needs Dask distributed; install it with "
                             "pip install 'dask[distributed]'") from e
        with Client(dask_scheduler, timeout="30s") as client:
            yield client.get_executor(pure=False)
        return
    if workers <= 1:
        yield InlineExecutor()
        return
    # spawn: children start clean (no forked cocotb/threads state) and inherit sys.path, so bench imports
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        yield ex


@contextlib.contextmanager
def cancel_on_interrupt(pending: dict, what: str, log=None):
    """Around a loop over :func:`completed`: on Ctrl-C, cancel the futures of ``pending`` that have not
    started, say that the finished ``what`` are saved and how to resume, and re-raise. For the resumable
    commands (``bench.sweep``, ``bench.accuracy``), which append each result as it finishes."""
    try:
        yield
    except KeyboardInterrupt:
        for fut in pending:
            fut.cancel()
        print(f"\ninterrupted: finished {what} are saved; rerun the same command to resume", file=log or sys.stderr)
        raise


def completed(ex: cf.Executor, pending: dict):
    """Yield ``(future, tag)`` for the futures of ``pending`` (future -> tag) as they finish, until it is
    empty; the caller may add futures to ``pending`` meanwhile (e.g. a build's run chunks). With an
    :class:`InlineExecutor` each wait first runs one task."""
    while pending:
        if isinstance(ex, InlineExecutor):
            ex.run_next()
        done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            yield fut, pending.pop(fut)


def chunks(items: list, size: int) -> list[list]:
    n = max(1, math.ceil(len(items) / max(1, size)))
    k = math.ceil(len(items) / n)  # even chunks, none larger than size
    return [items[i:i + k] for i in range(0, len(items), k)]
