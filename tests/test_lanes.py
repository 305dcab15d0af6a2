"""The wide-PE model (``golden.lanes``): issue rule per unit kind, and V = 1 is the RTL's contract."""

from __future__ import annotations

import numpy as np
import pytest

from golden.config import DATAFLOWS, ArrayConfig
from golden.dataflow import Unit
from golden.encode import encode
from golden.lanes import kernel_cycles, predict
from golden.layer import Layer
from golden.timing import Loader, simulate
from tests.conftest import random_layer


@pytest.mark.parametrize("unit,lengths,s,lanes,cycles", [
    (Unit.KERNEL, [9], 3, 1, 9), (Unit.KERNEL, [9], 3, 3, 3), (Unit.KERNEL, [9], 3, 9, 1), (Unit.KERNEL, [9], 3, 4, 3),
    (Unit.KERNEL, [3], 3, 9, 1),  # a stride pattern's three positions: one cycle, six lanes idle
    (Unit.ROW, [3, 3], 3, 9, 1), (Unit.ROW, [3, 3], 3, 3, 2), (Unit.ROW, [3, 3, 3], 3, 6, 2),
    (Unit.ROW, [3, 3], 3, 2, 4),  # V < S: each row in ceil(S/V) cycles
    (Unit.SINGLE, [1] * 5, 3, 3, 2), (Unit.SINGLE, [1] * 6, 3, 3, 2), (Unit.SINGLE, [1], 3, 9, 1),
    (Unit.KERNEL, [], 3, 9, 0),
])
def test_issue_rule_per_unit_kind(unit, lengths, s, lanes, cycles):
    assert kernel_cycles(unit, lengths, s, lanes) == cycles


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_one_lane_and_todays_feed_is_the_rtl_contract(dataflow):
    cfg = ArrayConfig(dataflow=dataflow, acc_depth=6)
    ly = random_layer(np.random.default_rng(4), 9, 4, 9, 7, stride=2, padding=1, kernel_density=0.6,
                      row_density=0.7, element_density=0.6)
    enc = encode(ly, cfg)
    p = predict(enc, 1)
    assert p.counters == simulate(enc)
    assert p.lane_ops == p.counters.weight_reads


def test_lane_utilization_of_a_dense_kernel_split_over_four_lanes():
    cfg = ArrayConfig(dataflow="dense")
    rng = np.random.default_rng(1)
    w = rng.integers(1, 100, (8, 2, 3, 3)) * rng.choice([-1, 1], (8, 2, 3, 3))
    ly = Layer(w, rng.integers(-5, 5, (2, 8, 8)), 1, 1)  # E = F = 8: whole tiles, no idle PE
    p = predict(encode(ly, cfg), 4)
    assert p.counters.mac_cycles == 8 * 2 * 3 * 4  # 3 cycles per kernel, 4 tiles
    assert p.lane_utilization == pytest.approx(9 / 12)


def test_wider_feeds_only_shorten_the_run():
    cfg = ArrayConfig(dataflow="kernel")
    ly = random_layer(np.random.default_rng(2), 32, 8, 12, 12, padding=1, kernel_density=0.2)
    enc = encode(ly, cfg)
    slow = predict(enc, 9).cycles
    fast = predict(enc, 9, Loader(words=6, rows=2), drain_width=4).cycles
    assert fast < slow
    assert predict(enc, 9, Loader(words=6, rows=2, buffers=4, overhead=1), 4).cycles <= fast


@pytest.mark.parametrize("lanes", [0, 10, 2.0, True])
def test_lanes_out_of_range_are_refused(lanes):
    enc = encode(random_layer(np.random.default_rng(0), 2, 2, 4, 4), ArrayConfig())
    with pytest.raises(ValueError, match=r"lanes must be an integer in \[1, max_kernel\*\*2=9\]"):
        predict(enc, lanes)
