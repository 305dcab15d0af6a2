"""The wide-PE model (``golden.lanes``): issue rule per unit kind, and V = 1 is the RTL's contract."""

from __future__ import annotations

import numpy as np
import pytest

from golden.config import DATAFLOWS, ArrayConfig
from golden.dataflow import NO_PATTERN, Unit, dataflow_of
from golden.encode import _issues, _units, encode
from golden.lanes import WIDE_FEED, kernel_cycles, lane_taps, mac_cycles, predict
from golden.layer import Layer
from golden.timing import Loader, adder_tree_latency, simulate
from golden.words import unit_word, weight_word
from tests.support import random_layer


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


# --- the wide array's encoding (``golden.encode`` with ``lanes``): what the RTL is checked against ---

@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("lanes", [2, 3, 4, 9])
@pytest.mark.parametrize("r,s", [(3, 3), (2, 3), (3, 1), (1, 2), (1, 1)])
def test_lane_encoding_takes_the_cycles_the_issue_rule_says(dataflow, lanes, r, s):
    """Two derivations of the same rule agree: the encoder's unit words (what the RTL issues) and
    ``golden.lanes.kernel_cycles`` on the one-lane schedule."""
    rng = np.random.default_rng(r * 10 + s)
    w = rng.integers(-7, 8, (7, 3, r, s)) * (rng.random((7, 3, r, s)) < 0.6)
    w[:, 1] = 0  # an all-zero channel
    ly = Layer(w, rng.integers(-8, 8, (3, 7, 6)), 1, 0)
    # in one mapping (the faster may differ between the arrays: the rule is the subject here, not the mapping)
    one = encode(ly, ArrayConfig(dataflow=dataflow, acc_depth=4), "tile")
    wide = encode(ly, ArrayConfig(dataflow=dataflow, acc_depth=4, lanes=lanes), "tile")
    assert wide.mac_cycles == mac_cycles(one, lanes)
    assert len(wide.weight) == sum(sum(row) for row in wide.mac_cycles)  # a weight word per MAC cycle
    # the same MAC cycles and weights (the run's length also has the adder tree's pipeline depth)
    timed, model = simulate(wide), predict(one, lanes).counters
    assert (timed.mac_cycles, timed.weight_reads) == (model.mac_cycles, model.weight_reads)
    # the same weights, in the same order, just packed by lane
    assert [e[2] for g in wide.entries for e in g] == [e[2] for g in one.entries for e in g]


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_weight_words_hold_each_cycles_weights_by_lane(dataflow):
    """Unpacking every weight word lane by lane gives back the one-lane image, idle lanes 0."""
    cfg1, cfg3 = ArrayConfig(dataflow=dataflow), ArrayConfig(dataflow=dataflow, lanes=3)
    w = np.array([[[[1, -2, 0], [0, 0, 0], [-128, 127, 5]]]])
    ly = Layer(w, np.ones((1, 3, 3), np.int64), 1, 0)
    lanes = [v for word in encode(ly, cfg3).weight for v in weight_word(cfg3).unpack(word).values()]
    assert [v for v in lanes if v] == [v for v in encode(ly, cfg1).weight if v]
    expect = {"dense": 9, "kernel": 9, "strided": 9, "vector": 6, "element": 6}[dataflow]  # lanes in use
    assert len(lanes) == 3 * -(-expect // 3)


def test_row_words_name_several_rows_and_single_words_several_weights():
    w = np.zeros((2, 1, 3, 3), np.int64)
    w[0, 0, 0] = [1, 2, 3]
    w[0, 0, 2] = [4, 5, 6]
    w[1, 0, 1, 1] = 7
    ly = Layer(w, np.ones((1, 3, 3), np.int64), 1, 0)
    vec = encode(ly, ArrayConfig(dataflow="vector", lanes=9))
    layout = unit_word(vec.cfg)
    assert [layout.unpack(u) for u in vec.unit_index] == [
        dict(slot=0, count=2, r0=0, r1=2, r2=0), dict(slot=1, count=1, r0=1, r1=0, r2=0)]
    el = encode(ly, ArrayConfig(dataflow="element", lanes=4))
    words = [unit_word(el.cfg).unpack(u) for u in el.unit_index]
    assert [(u["slot"], u["count"]) for u in words] == [(0, 4), (0, 2), (1, 1)]
    assert (words[1]["r0"], words[1]["s0"], words[1]["r1"], words[1]["s1"]) == (2, 1, 2, 2)
    # with V < S a row takes several cycles and its word names one row
    narrow = encode(ly, ArrayConfig(dataflow="vector", lanes=2))
    assert narrow.mac_cycles == [[6]]


def _issued_taps(dataflow: str, k: int, lanes: int) -> list[set[tuple[int, int]]]:
    """Every (r, s) the encoder puts on each lane, over kernel sizes up to ``k``, every stride pattern and
    the kernels "non-zero at positions 0 .. a-1 and at p" (a <= p): these put position p as the a-th
    non-zero of a kernel, and the rows of 0 .. a-1 ahead of p's row, so they reach every lane a
    position can take."""
    df = dataflow_of(dataflow)
    seen: list[set[tuple[int, int]]] = [set() for _ in range(lanes)]
    for r in range(1, k + 1):
        for s in range(1, k + 1):
            n = r * s
            kernels = [np.ones((r, s))] if df.unit is Unit.KERNEL else []
            for p in range(n):
                for a in range(p + 1):
                    flat = np.zeros(n)
                    flat[:a] = 1
                    flat[p] = 1
                    kernels.append(flat.reshape(r, s))
            patterns = [(sg, ph) for sg in range(1, n + 1) for ph in range(sg)] if df.pattern else [NO_PATTERN]
            for kern in kernels:
                for pattern in patterns:
                    for _, _, cycles in _issues(df, _units(df, kern[None], pattern), s, lanes):
                        for cycle in cycles:
                            for lane, pos in enumerate(cycle):
                                seen[lane].add(pos)
    return seen


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("k", [2, 3])
def test_lane_taps_are_exactly_what_the_encoder_issues(dataflow, k):
    """The tile wires each lane to ``lane_taps``' rows and columns only: a position outside them would
    read 0, one inside never issued is wasted area. Both are checked against the encoder."""
    for lanes in range(1, k * k + 1):
        seen = _issued_taps(dataflow, k, lanes)
        want = [(tuple(sorted({r for r, _ in t})), tuple(sorted({s for _, s in t}))) for t in seen]
        assert lane_taps(dataflow, k, lanes) == tuple(want), (dataflow, k, lanes)


def test_structured_lanes_read_fewer_taps_than_element_lanes():
    """At ``V = 9`` a kernel lane reads at most 3 rows and 2 columns, lanes 6-8 one position each; an
    element lane up to every row and column."""
    def wires(df):
        return sum(len(rows) * len(cols) for rows, cols in lane_taps(df, 3, 9))
    assert lane_taps("kernel", 3, 9)[8] == ((2,), (2,))
    assert wires("kernel") < wires("vector") < wires("strided") < wires("element")
    assert lane_taps("element", 3, 1) == lane_taps("kernel", 3, 1) == (((0, 1, 2), (0, 1, 2)),)


def test_lanes_no_cycle_can_fill_are_built_as_zero(tmp_path):
    """vector at V = 8 (max_kernel 3): rows of 3 fill lanes 0-5, rows of 2 at most 3 rows (lanes 0-5),
    rows of 1 lanes 0-2, so lanes 6 and 7 never carry a position; the tile drives them 0."""
    from hdl.generate import generate

    assert [rows for rows, _ in lane_taps("vector", 3, 8)][6:] == [(), ()]
    v_path, _ = generate(ArrayConfig(dataflow="vector", lanes=8, rows=2, cols=2, acc_depth=4), tmp_path)
    assert v_path.exists()


def test_adder_tree_latency_grows_with_log2_lanes():
    assert [adder_tree_latency(ArrayConfig(lanes=v)) for v in (1, 2, 3, 4, 5, 8, 9)] == [0, 1, 1, 1, 2, 2, 2]


def test_lanes_beyond_a_kernel_are_refused_at_generate_time():
    with pytest.raises(ValueError, match=r"lanes must be in \[1, 4\], not 5; a cycle issues positions of one kernel"):
        ArrayConfig(max_kernel=2, lanes=5)


@pytest.fixture(scope="module")
def headline_cycles():
    """Cycles of the headline layer (``bench.granularity``) on the 4x4 array with ``WIDE_FEED``, the
    contract the RTL is checked against (``bench.granularity --lanes V`` runs it)."""
    from bench.granularity import headline_layer
    from golden.prune import prune

    base = headline_layer()

    def cycles(dataflow: str, lanes: int, granularity: str | None = None, sparsity: float = 0.0, **kw) -> int:
        ly = base if granularity is None else Layer(prune(base.weights, granularity, sparsity, **kw).weights,
                                                    base.activations, 1, 1)
        cfg = ArrayConfig(dataflow=dataflow, lanes=lanes, index_depth=16384, **WIDE_FEED)
        return simulate(encode(ly, cfg)).busy_cycles

    return cycles


def test_issue_13_targets_on_the_headline_layer(headline_cycles):
    """V = 9 dense <= 1/7 of V = 1; kernel 75 % >= 3.4x and 90 % >= 5x over V = 9 dense; balanced 3 of 9
    on element >= 2.7x over V = 3 dense."""
    c = headline_cycles
    dense9 = c("dense", 9)
    assert c("dense", 1) >= 7 * dense9
    assert dense9 >= 3.4 * c("kernel", 9, "kernel", 0.75)
    assert dense9 >= 5 * c("kernel", 9, "kernel", 0.90)
    assert c("dense", 3) >= 2.7 * c("element", 3, "balanced", 2 / 3, keep=3)



@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_a_strided_wide_entry_waits_for_its_pattern(dataflow, monkeypatch):
    """Strided with lanes computes its lanes' starts from the entry's latched pattern (``PATTERN_LATENCY``):
    on a layer bound by the sequencer, every entry costs ``PATTERN_LATENCY`` cycles more than the one pop
    cycle of the other dataflows, and nothing else changes; no other dataflow or lane count pays it."""
    import golden.timing

    wide = ArrayConfig(dataflow=dataflow, lanes=3, acc_depth=8)
    pays = dataflow == "strided"
    assert golden.timing.entry_cycles(wide) == 1 + (golden.timing.PATTERN_LATENCY if pays else 0)
    assert golden.timing.entry_cycles(ArrayConfig(dataflow=dataflow)) == 1
    ly = random_layer(np.random.default_rng(7), 8, 12, 6, 6, padding=1, kernel_density=0.9)
    enc = encode(ly, wide)
    now = simulate(enc)
    latency = golden.timing.PATTERN_LATENCY
    monkeypatch.setattr(golden.timing, "PATTERN_LATENCY", 0)
    without = simulate(enc)
    assert now.drain_stall_cycles == without.drain_stall_cycles == 0  # the sequencer bounds the run
    # the pattern's cycles overlap a wait for the window (the run's first entry waits for its load)
    hidden = without.load_stall_cycles - now.load_stall_cycles
    entries = sum(len(e) for e in enc.entries) * enc.tiles_y * enc.tiles_x
    assert now.busy_cycles - without.busy_cycles == (latency * entries - hidden if pays else 0)
    assert hidden == (latency if pays else 0)
