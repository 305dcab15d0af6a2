"""The randomized regression's draw (``sim.space``): legal layers, reproducible cases, coverage."""

from __future__ import annotations

import numpy as np
import pytest

from golden.config import DATAFLOWS, ArrayConfig
from golden.encode import encode
from golden.timing import cycles
from sim.space import BOUNDARIES, covered, draw_case, draw_cases, reachable_boundaries

ODD = dict(rows=1, cols=3, acc_depth=5, weight_bits=6, act_bits=5, acc_bits=16, max_kernel=2, max_stride=1,
           act_lanes=3, act_depth=512, weight_depth=1024, index_depth=128, out_depth=512)


@pytest.mark.parametrize("params", [pytest.param({}, marks=pytest.mark.slow), ODD], ids=["default", "odd"])
def test_a_run_of_boundaries_times_dataflows_covers_every_reachable_boundary(params):
    """A run of dataflows x boundaries cases is on every boundary its array can reach. The default array
    (37 s of drawing its buffer-filling layers) with ``-m slow``; the short RTL runs of
    ``test_regress.py`` check the first boundaries' coverage of the odd 3-lane array by default."""
    cfg = ArrayConfig(**params)
    n = len(DATAFLOWS) * len(BOUNDARIES)
    cases = draw_cases(cfg, 5, n, DATAFLOWS)
    for df in DATAFLOWS:
        seen = {b for c in cases if c.dataflow == df for b in covered(c, cfg)}
        reach = reachable_boundaries(ArrayConfig(**{**params, "dataflow": df}))
        assert set(reach) <= seen, f"{df} misses {sorted(set(reach) - seen)}"


def test_boundaries_the_array_cannot_reach_are_left_out():
    reach = reachable_boundaries(ArrayConfig(**ODD))
    assert "E<rows" not in reach and "stride=2,R=1" not in reach and "F<cols" in reach


@pytest.mark.parametrize("params", [{}, ODD], ids=["default", "odd"])
def test_every_case_fits_its_array_and_the_cycle_budget(params):
    cfg = ArrayConfig(**params)
    for case in draw_cases(cfg, 9, 60, DATAFLOWS, max_cycles=20_000):
        c = case.config(cfg)
        enc = encode(case.layer, c)  # raises if anything does not fit
        fixed = case.goal in ("activation buffer >= 90 %", "output buffer >= 90 %", "schedule buffer >= 90 %")
        assert fixed or cycles(enc) <= 20_000
        lo, hi = -(1 << (c.weight_bits - 1)), (1 << (c.weight_bits - 1)) - 1
        assert lo <= case.layer.weights.min() and case.layer.weights.max() <= hi
        assert 0 <= case.load_gap < 1 and 0 <= case.backpressure < 1


def test_a_case_is_the_same_whatever_else_the_run_draws():
    cfg = ArrayConfig()
    a = draw_case(cfg, 3, 41, DATAFLOWS)
    b = draw_cases(cfg, 3, 45, DATAFLOWS)[41]
    assert (a.dataflow, a.goal, a.stall_seed, a.load_gap) == (b.dataflow, b.goal, b.stall_seed, b.load_gap)
    assert np.array_equal(a.layer.weights, b.layer.weights)
    assert np.array_equal(a.layer.activations, b.layer.activations)
    assert draw_case(cfg, 4, 41, DATAFLOWS).stall_seed != a.stall_seed


def test_the_free_draws_reach_past_one_tile_and_one_filter_group():
    cfg = ArrayConfig()
    first_free = len(DATAFLOWS) * len(BOUNDARIES)  # the cases before aim at the boundaries (drawn by index:
    cases = [draw_case(cfg, 2, i, DATAFLOWS) for i in range(first_free, 200)]  # the same as in a run of 200)
    cases = [c for c in cases if c.goal is None]
    assert cases
    assert any(c.layer.m > cfg.acc_depth for c in cases)
    assert any(c.layer.e > cfg.rows and c.layer.f > cfg.cols for c in cases)
    assert len({c.weights for c in cases}) >= 6 and len({c.values for c in cases}) == 4
