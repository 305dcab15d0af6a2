"""``python -m sim.regress``: its RTL runs (short in the default suite, long with ``-m slow``), its
failure report and its argument errors."""

from __future__ import annotations

import io

import numpy as np
import pytest

from golden.config import DATAFLOWS, ArrayConfig
from golden.layerio import load_layer
from sim import regress as rg
from sim.space import reachable_boundaries
from tests.support import ODD

SHORT_CASES = 10  # per dataflow: the first ten boundaries of sim.space.BOUNDARIES
SHORT_MAX_CYCLES = 5000  # small layers: the boundaries, not the sizes, are what the short run is for


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_short_randomized_run_passes_and_covers_the_shape_boundaries(dataflow, odd_wide_array, tmp_path):
    """On the odd 3-lane array and the native driver: the models ``test_verilator.py`` builds (the long
    runs below take the default and the wide arrays on the cocotb testbench)."""
    cfg = ArrayConfig(**odd_wide_array)
    s = rg.regress(cfg, 12, SHORT_CASES, [dataflow], workers=1, max_cycles=SHORT_MAX_CYCLES, out_dir=tmp_path,
                   progress=False, log=io.StringIO(), harness="native")
    assert (s.passed, s.failed) == (SHORT_CASES, 0), [o.problems for o in s.outcomes.values() if not o.ok]
    cov = s.coverage()[rg.variant_label(dataflow, cfg.lanes)]
    reach = reachable_boundaries(ArrayConfig(**dict(odd_wide_array, dataflow=dataflow)))
    assert all(cov[b] > 0 for b in reach[:SHORT_CASES])


@pytest.mark.slow
def test_long_randomized_run_passes_and_covers_every_boundary(tmp_path):
    s = rg.regress(ArrayConfig(), 2026, 1000, list(DATAFLOWS), workers=2, out_dir=tmp_path, progress=False,
                   log=io.StringIO())
    assert (s.passed, s.failed) == (1000, 0), [o.problems for o in s.outcomes.values() if not o.ok]
    assert not s.missing()


@pytest.mark.slow
def test_long_randomized_run_on_an_odd_array(tmp_path):
    """Odd widths (16-bit accumulators wrap), one-cycle accumulate, three load lanes, small buffers."""
    s = rg.regress(ArrayConfig(**ODD), 7, 300, list(DATAFLOWS), workers=2, out_dir=tmp_path, progress=False,
                   log=io.StringIO())
    assert (s.passed, s.failed) == (300, 0), [o.problems for o in s.outcomes.values() if not o.ok]
    assert not s.missing()


@pytest.mark.slow
def test_long_randomized_run_with_wide_pes(tmp_path):
    """Every dataflow at V = 1, 3 and 9 on the 4x4 array with the wide feed (``golden.lanes.WIDE_FEED``):
    the issue-13 run of the README."""
    from golden.lanes import WIDE_FEED

    s = rg.regress(ArrayConfig(**WIDE_FEED), 13, 1000, list(DATAFLOWS), workers=2, out_dir=tmp_path, progress=False,
                   log=io.StringIO(), lanes=[1, 3, 9])
    assert (s.passed, s.failed) == (1000, 0), [o.problems for o in s.outcomes.values() if not o.ok]


def test_a_failure_is_reported_with_its_reproduction_and_saved(tmp_path, monkeypatch, capsys):
    def fake_chunk(cfg_dict, cases, build_root, harness="cocotb", waves=None):
        return [rg.Outcome(c.index, c.index != 3, [] if c.index != 3 else ["cycles 10 != predicted 9"], 10)
                for c in cases]

    monkeypatch.setattr(rg, "build_array", lambda cfg_dict, root, harness="cocotb", trace=None: root)
    monkeypatch.setattr(rg, "run_chunk", fake_chunk)
    code = rg.main(["--count", "6", "--seed", "4", "--dataflows", "dense,element", "--workers", "1",
                    "--rows", "2", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.strip().splitlines()[-1] == "5 passed, 1 failed"
    fail = [ln for ln in err.splitlines() if ln.startswith("FAIL case 3 (element")]
    assert fail and "cycles 10 != predicted 9" in fail[0]
    assert "python -m sim.regress --seed 4 --dataflows dense,element --case 3 --rows 2" in err
    npz = tmp_path / "seed-4" / "case-3-element.npz"
    assert f"python -m sim.run --sparsity element --layer {npz}" in err
    case = rg.draw_case(ArrayConfig(rows=2), 4, 3, ["dense", "element"])
    assert np.array_equal(load_layer(npz).weights, case.layer.weights)


def test_case_runs_only_the_named_cases(monkeypatch, capsys, tmp_path):
    seen = []

    def fake_chunk(cfg_dict, cases, build_root, harness="cocotb", waves=None):
        seen.extend(c.index for c in cases)
        return [rg.Outcome(c.index, True, [], 1) for c in cases]

    monkeypatch.setattr(rg, "build_array", lambda cfg_dict, root, harness="cocotb", trace=None: root)
    monkeypatch.setattr(rg, "run_chunk", fake_chunk)
    assert rg.main(["--seed", "1", "--case", "17", "--case", "3", "--workers", "1", "--out", str(tmp_path)]) == 0
    assert sorted(seen) == [3, 17]
    assert capsys.readouterr().out.strip().splitlines()[-1] == "2 passed, 0 failed"


@pytest.mark.parametrize("argv,message", [
    (["--dataflows", "dense,sparse"], "--dataflows: unknown sparse"),
    (["--count", "0"], "--count must be >= 1, not 0"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--rows", "0"], "--rows must be in [1, 64], not 0"),
    (["--case", "-1"], "--case must be >= 0"),
])
def test_bad_arguments_get_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        rg.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
