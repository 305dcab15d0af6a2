"""Stage lines of long commands (golden.progress): on a terminal only; bench.granularity's per-dataflow lines."""

from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest

from bench import granularity
from golden.layer import Layer
from golden.progress import StageLog, hms

COUNTERS = {"act_reads": 10, "weight_reads": 10, "index_reads": 10**6, "output_writes": 10, "mac_cycles": 100}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stage_lines_carry_the_elapsed_time_and_only_reach_a_terminal():
    tty, pipe = Terminal(), io.StringIO()
    StageLog(tty)("placement (nextpnr)")
    StageLog(pipe)("placement (nextpnr)")
    assert re.fullmatch(r"\[0:00\] placement \(nextpnr\)\n", tty.getvalue()) and pipe.getvalue() == ""
    assert (hms(59.6), hms(61), hms(3725), hms(float("nan"))) == ("1:00", "1:01", "1:02:05", "--:--")


def small_layer(seed: int = 0) -> Layer:
    """The headline layer's shape at an eighth of its channels and a quarter of its pixels (fast to prune)."""
    rng = np.random.default_rng(seed)
    w = np.clip(np.round(rng.normal(0, 40, (8, 8, 3, 3))), -128, 127).astype(np.int64)
    return Layer(w, rng.integers(-128, 128, (8, 8, 8)).astype(np.int64), 1, 1)


@pytest.mark.parametrize("terminal", [True, False])
def test_granularity_says_which_dataflows_model_it_is_on(terminal, monkeypatch, capsys):
    """The RTL runs are replaced by a recorder; what is checked is the line before each dataflow's runs."""
    started = []

    def fake_run_layers(cfg, layers, name, check, harness="cocotb"):
        started.append(cfg.dataflow)
        return [{"cycles": 1000, "predicted_cycles": 1000, "outputs_match": True, "perf": COUNTERS} for _ in layers]

    monkeypatch.setattr(granularity, "run_layers", fake_run_layers)
    monkeypatch.setattr(granularity, "headline_layer", small_layer)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    assert granularity.main([]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if not line.startswith("skipped:")]
    n = len(granularity.DATAFLOWS)
    if terminal:
        assert all(re.match(r"\[\d+:\d\d\] ", line) for line in lines)
        said = [re.sub(r"^\[\d+:\d\d\] ", "", line) for line in lines]
        assert [line.split(" (")[0] for line in said] == [*started, f"all {n} dataflows run"]
        assert said[0] == f"{started[0]} (1/{n}): 5 layers on its Verilator model (compiled first if new)"
    else:
        assert lines == [] and len(started) == n
    assert "| dataflow | pruning |" in captured.out
