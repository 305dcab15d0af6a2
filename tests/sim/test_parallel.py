"""``sim.parallel``: the Ctrl-C handling the resumable commands (``bench.sweep``, ``bench.accuracy``) share."""

from __future__ import annotations

import concurrent.futures as cf
import io

import pytest

from sim.parallel import InlineExecutor, cancel_on_interrupt, completed


def test_ctrl_c_cancels_what_has_not_started_says_how_to_resume_and_reraises():
    ex = InlineExecutor()
    pending = {ex.submit(lambda i=i: i): i for i in range(3)}
    seen, log = [], io.StringIO()
    with pytest.raises(KeyboardInterrupt), cancel_on_interrupt(pending, "runs", log):
        for fut, tag in completed(ex, pending):
            seen.append((tag, fut.result()))
            raise KeyboardInterrupt
    assert len(seen) == 1
    assert all(f.cancelled() for f in pending)
    assert log.getvalue() == "\ninterrupted: finished runs are saved; rerun the same command to resume\n"


def test_without_ctrl_c_nothing_is_cancelled():
    fut: cf.Future = cf.Future()
    with cancel_on_interrupt({fut: 0}, "points", io.StringIO()):
        pass
    assert not fut.cancelled()
