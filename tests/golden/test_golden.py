"""Golden model: reference convolution, layer checks, encoding and the timing model's invariants."""

from __future__ import annotations

import numpy as np
import pytest

from golden import chunks
from golden.config import ArrayConfig
from golden.conv import conv2d, exact_matmul, wrap
from golden.encode import encode
from golden.layer import Layer
from golden.timing import simulate
from golden.words import CHUNK_FIELDS, CONFIG_FIELDS, config_widths
from tests.support import random_layer


def naive_conv(w, a, stride, pad):
    m, c, r, s = w.shape
    _, h, wd = a.shape
    e, f = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    out = np.zeros((m, e, f), dtype=object)
    for mm in range(m):
        for y in range(e):
            for x in range(f):
                acc = 0
                for cc in range(c):
                    for i in range(r):
                        for j in range(s):
                            yy, xx = y * stride + i - pad, x * stride + j - pad
                            if 0 <= yy < h and 0 <= xx < wd:
                                acc += int(w[mm, cc, i, j]) * int(a[cc, yy, xx])
                out[mm, y, x] = acc
    return out


@pytest.mark.parametrize("stride,pad", [(1, 0), (1, 1), (2, 0), (2, 1)])
def test_conv2d_matches_naive_loops(stride, pad):
    rng = np.random.default_rng(stride * 10 + pad)
    ly = random_layer(rng, 3, 2, 7, 6, stride=stride, padding=pad)
    ref = naive_conv(ly.weights, ly.activations, stride, pad)
    assert np.array_equal(conv2d(ly.weights, ly.activations, stride, pad, 64), ref.astype(np.int64))


def test_accumulator_wraps_twos_complement():
    w = np.full((1, 4, 1, 1), 127, dtype=np.int64)
    a = np.full((4, 1, 1), 127, dtype=np.int64)
    # 4 * 127 * 127 = 64516 wraps in 16 bits to 64516 - 65536
    assert conv2d(w, a, acc_bits=16)[0, 0, 0] == 64516 - 65536
    assert list(wrap(np.array([127, 128, -129]), 8)) == [127, -128, 127]


@pytest.mark.parametrize("kwargs,match", [
    (dict(weights=np.zeros((2, 2, 3)), activations=np.zeros((2, 4, 4), int)), r"weights must be a 4-D"),
    (dict(weights=np.zeros((2, 2, 3, 3)), activations=np.zeros((2, 4, 4), int)), r"weights must have an integer"),
    (dict(weights=np.zeros((2, 3, 3, 3), int), activations=np.zeros((2, 4, 4), int)), r"C=3 .* C=2"),
    (dict(weights=np.zeros((2, 2, 5, 5), int), activations=np.zeros((2, 3, 3), int)), r"does not fit a 3x3"),
    (dict(weights=np.zeros((2, 2, 3, 3), int), activations=np.zeros((2, 4, 4), int), stride=0), r"stride must"),
    (dict(weights=np.zeros((2, 2, 3, 3), int), activations=np.zeros((2, 4, 4), int), padding=3), r"padding 3"),
])
def test_layer_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Layer(**kwargs)


def test_check_fits_names_the_fix():
    cfg = ArrayConfig(act_bits=4, act_depth=64, out_depth=64, max_kernel=3, max_stride=1)
    ok = np.zeros((1, 1, 3, 3), np.int64)
    with pytest.raises(ValueError, match=r"activations range \[-9, -9\] does not fit 4-bit .* --act-bits 5"):
        encode(Layer(ok, np.full((1, 4, 4), -9, np.int64)), cfg)
    with pytest.raises(ValueError, match=r"kernel 5x5 exceeds max_kernel=3 \(regenerate with --max-kernel 5\)"):
        encode(Layer(np.zeros((1, 1, 5, 5), np.int64), np.zeros((1, 6, 6), np.int64)), cfg)
    with pytest.raises(ValueError, match=r"stride 2 exceeds max_stride=1"):
        encode(Layer(ok, np.zeros((1, 6, 6), np.int64), stride=2), cfg)
    with pytest.raises(ValueError, match=r"activations need 100 words but act_depth is 64"):
        encode(Layer(ok, np.zeros((1, 10, 10), np.int64)), cfg)
    with pytest.raises(ValueError, match=r"the weight image needs 90 words .* --weight-depth 90"):
        encode(Layer(np.ones((10, 1, 3, 3), np.int64), np.zeros((1, 3, 3), np.int64)),
               ArrayConfig(weight_depth=64))


def test_kernel_encoding_skips_zero_kernels_and_channels():
    cfg = ArrayConfig(dataflow="kernel", acc_depth=2)
    w = np.zeros((3, 3, 1, 1), np.int64)
    w[0, 0] = 5
    w[1, 0] = 6
    w[2, 2] = 7  # group 1 = filter 2 only; channel 1 is empty everywhere
    enc = encode(Layer(w, np.zeros((3, 2, 2), np.int64)), cfg)
    assert enc.entries == [[(0, 2, 2)], [(2, 1, 1)]]
    cb = cfg.chan_bits
    # an entry names its channel by its plane offset c*H*W (channel 2 of 2x2 planes starts at 8)
    assert enc.chan_index == [1 << cb, 0 | 2 << cb, 1 << cb, 8 | 1 << cb]
    assert enc.unit_index == [0, 1, 0]
    assert enc.weight == [5, 6, 7]


def test_dense_encoding_is_every_weight_in_schedule_order():
    cfg = ArrayConfig(dataflow="dense", acc_depth=2)
    w = np.arange(3 * 2 * 2 * 2).reshape(3, 2, 2, 2)
    enc = encode(Layer(w, np.zeros((2, 3, 3), np.int64)), cfg)
    expect = [int(v) for g in (w[0:2], w[2:3]) for c in range(2) for m in range(g.shape[0]) for v in g[m, c].ravel()]
    assert enc.weight == expect and enc.chan_index == [] and enc.unit_index == []


def test_vector_element_strided_encodings():
    w = np.zeros((2, 1, 3, 3), np.int64)
    w[0, 0, 1] = [1, 0, 2]  # one non-zero row with a zero inside
    w[1, 0, 2, 2] = 3
    ly = Layer(w, np.zeros((1, 4, 4), np.int64))
    vec = encode(ly, ArrayConfig(dataflow="vector", acc_depth=2))
    sb, pb = vec.cfg.slot_bits, vec.cfg.pos_bits
    assert vec.entries == [[(0, 2, 6)]] and vec.weight == [1, 0, 2, 0, 0, 3]
    assert vec.unit_index == [0 | 1 << sb, 1 | 2 << sb]
    el = encode(ly, ArrayConfig(dataflow="element", acc_depth=2))
    assert el.entries == [[(0, 3, 3)]] and el.weight == [1, 2, 3]
    assert el.unit_index == [0 | 1 << sb | 0 << (sb + pb), 0 | 1 << sb | 2 << (sb + pb), 1 | 2 << sb | 2 << (sb + pb)]
    # positions 3, 5, 8 used: the smallest pattern covering them is sigma=1 (gcd of gaps is 1) ...
    st = encode(ly, ArrayConfig(dataflow="strided", acc_depth=2))
    assert st.entries == [[(0, 2, 18)]]
    # ... while a channel pruned to k % 4 == 1 keeps 2 positions per kernel (1 and 5)
    w2 = np.zeros((2, 1, 3, 3), np.int64)
    w2[0, 0, 0, 1], w2[1, 0, 1, 2] = 4, 5
    st2 = encode(Layer(w2, np.zeros((1, 4, 4), np.int64)), ArrayConfig(dataflow="strided", acc_depth=2))
    assert st2.entries == [[(0, 2, 4)]] and st2.weight == [4, 0, 0, 5]
    cfg = st2.cfg
    extra = st2.chan_index[1] >> (cfg.chan_bits + cfg.count_bits)
    # phase 1 = (0, 1), step 4 = (1, 1) for S = 3
    assert [(extra >> (i * cfg.pos_bits)) & ((1 << cfg.pos_bits) - 1) for i in range(4)] == [0, 1, 1, 1]


@pytest.mark.parametrize("df", ["dense", "kernel", "vector", "strided", "element"])
def test_timing_invariants(df):
    rng = np.random.default_rng(3)
    cfg = ArrayConfig(dataflow=df, rows=2, cols=3, acc_depth=4)
    for _ in range(20):
        ly = random_layer(rng, int(rng.integers(1, 9)), int(rng.integers(1, 6)), int(rng.integers(3, 9)),
                          int(rng.integers(3, 9)), stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                          kernel_density=float(rng.random()))
        enc = encode(ly, cfg)
        t = simulate(enc)
        sched = sum(macs for ents in enc.entries for _, _, macs in ents) * enc.tiles_y * enc.tiles_x
        assert t.mac_cycles == sched == t.weight_reads
        assert sched >= int(np.count_nonzero(ly.weights)) * enc.tiles_y * enc.tiles_x
        assert t.busy_cycles >= t.mac_cycles + t.load_stall_cycles
        assert t.output_writes == ly.m * ly.e * ly.f
        # a drain cycle writes up to W = drain_lanes outputs of one PE row, within one tile's columns, or
        # in the chunk mapping within a PE row's run of consecutive outputs
        W = cfg.drain_lanes
        per_filter = (sum(-(-n // W) for t in range(enc.tiles_x) for n in chunks.outputs(ly.e, ly.f, cfg, t))
                      if enc.chunks else ly.e * sum(-(-min(cfg.cols, ly.f - x) // W) for x in range(0, ly.f, cfg.cols)))
        assert W == 2 and t.drain_cycles == ly.m * per_filter
        assert (t.index_reads == 0) == (df == "dense")


def test_config_widths_cover_the_tile_and_stride():
    # the window counters and the stride field must hold tile_rows/tile_cols and max_stride
    cfg = ArrayConfig(rows=8, cols=1, acc_depth=1, max_kernel=1, max_stride=4, act_depth=7, out_depth=7,
                      weight_depth=1)
    assert (1 << cfg.dim_bits) > max(cfg.tile_rows, cfg.tile_cols, cfg.max_stride)


def _extreme_layers(cfg: ArrayConfig, rng: np.random.Generator):
    """Layers at the limits ``check_fits`` allows: widest/tallest input, largest padding and stride."""
    k, st, pad = cfg.max_kernel, cfg.max_stride, cfg.max_kernel - 1
    for shape, acts in [((1, 1, 1, k), (1, 1, cfg.act_depth)), ((1, 1, k, 1), (1, cfg.act_depth, 1)),
                        ((cfg.acc_depth + 1, 1, k, k), (1, 1, cfg.act_depth)),
                        ((1, 4, k, k), (4, cfg.act_depth // 8, 2))]:
        for stride in (1, st):
            yield Layer(rng.integers(-3, 3, shape), rng.integers(-3, 3, acts), stride, pad)


@pytest.mark.parametrize("params", [
    dict(rows=2, cols=3, acc_depth=4, max_kernel=3, max_stride=2, act_depth=64, out_depth=4096),
    dict(rows=1, cols=1, acc_depth=1, max_kernel=1, max_stride=4, act_depth=16, out_depth=64),
    dict(rows=4, cols=2, acc_depth=3, max_kernel=5, max_stride=3, act_depth=40, out_depth=4096),
])
@pytest.mark.parametrize("with_chunks", [0, 1])
def test_runtime_config_fits_its_fields(params, with_chunks):
    # the host-computed products must fit the configuration struct for every layer that fits the array
    cfg = ArrayConfig(**params, epilogue=0, chunks=with_chunks)  # no output stage: no fields of its own
    widths = config_widths(cfg)
    assert tuple(widths) == CONFIG_FIELDS + (CHUNK_FIELDS if with_chunks else ())
    for ly in _extreme_layers(cfg, np.random.default_rng(0)):
        for mapping in ("tile", "chunks") if chunks.usable(ly.f, cfg) else ("tile",):
            rc = encode(ly, cfg, mapping).runtime_config()
            assert set(rc) == set(widths)
            for name, value in rc.items():
                assert 0 <= value < 1 << widths[name], (name, value, widths[name], ly.activations.shape)
        rc = encode(ly, cfg).runtime_config()
        for name, value in rc.items():
            assert 0 <= value < 1 << widths[name], (name, value, widths[name], ly.activations.shape)
        assert rc["hw"] == ly.h * ly.w and rc["ystep_addr"] == cfg.rows * ly.stride * ly.w


def test_channel_entries_hold_plane_offsets_within_chan_bits():
    # with the input filling a power-of-two buffer exactly, the last plane offset still fits chan_bits
    cfg = ArrayConfig(dataflow="kernel", acc_depth=2, act_depth=64)
    w = np.ones((2, 4, 3, 3), np.int64)
    enc = encode(Layer(w, np.zeros((4, 4, 4), np.int64)), cfg)
    cb = cfg.chan_bits
    assert [word & ((1 << cb) - 1) for word in enc.chan_index[1:]] == [0, 16, 32, 48]
    assert [word >> cb for word in enc.chan_index[1:]] == [2, 2, 2, 2]


@pytest.mark.parametrize("bits", [8, 26, 27, 31, 32])
def test_the_fast_products_are_exact_at_every_magnitude(bits):
    """``exact_matmul`` picks float64, int64 or Python integers by the largest possible partial sum; at
    each side of the 2**53 and 2**63 bounds it equals the Python-integer product."""
    rng = np.random.default_rng(bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    a = rng.integers(lo, hi + 1, (5, 9), dtype=np.int64)
    b = rng.integers(lo, hi + 1, (9, 7), dtype=np.int64)
    a[0, :], b[:, 0] = lo, lo  # the extreme sum: 9 * 2**(2*bits - 2)
    ref = a.astype(object).dot(b.astype(object))
    got = exact_matmul(a, b)
    assert got.dtype == (object if 9 * (1 << (2 * bits - 2)) >= 1 << 63 else np.int64)
    assert (got == ref).all()


def test_reference_wraps_sums_beyond_int64():
    w = np.full((1, 4, 1, 1), -(1 << 23), dtype=np.int64)
    a = np.full((4, 1, 1), -(1 << 23), dtype=np.int64)
    big = conv2d(np.repeat(w, 1, 0), a, acc_bits=48)  # 4 * 2**46 wraps to 0 in 48 bits
    assert big[0, 0, 0] == 0
    assert wrap(np.array([1 << 70]), 62)[0] == 0


def test_manifest_params_from_another_version_are_rejected():
    with pytest.raises(ValueError, match=r"unknown array parameter\(s\) bogus"):
        ArrayConfig.from_dict({**ArrayConfig().to_dict(), "bogus": 1})


def test_check_run_names_every_kind_of_mismatch():
    from golden.check import check_run
    rng = np.random.default_rng(4)
    enc = encode(random_layer(rng, 2, 2, 5, 5, padding=1), ArrayConfig(dataflow="kernel"))
    good = conv2d(enc.layer.weights, enc.layer.activations, 1, 1)
    perf = simulate(enc).to_dict()
    assert check_run(enc, good, perf).ok
    bad = good.copy()
    bad[1, 2, 3] += 1
    v = check_run(enc, bad, {**perf, "act_reads": 0}, cycles=perf["busy_cycles"] + 1)
    assert not v.outputs_match and not v.cycles_match and not v.counters_match
    assert v.problems[0].startswith("1 outputs differ, first at (m,y,x)=(1, 2, 3)")
    assert "cycles" in v.problems[1] and "'act_reads'" in v.problems[2]


def test_check_run_reports_counters_wider_than_perf_bits():
    from golden.check import check_run
    rng = np.random.default_rng(5)
    enc = encode(random_layer(rng, 32, 32, 16, 16, padding=1), ArrayConfig(dataflow="dense", perf_bits=16))
    perf = simulate(enc).to_dict()
    assert perf["busy_cycles"] >= 1 << 16  # this layer's counts do not fit 16 bits
    v = check_run(enc, conv2d(enc.layer.weights, enc.layer.activations, 1, 1), perf)
    assert not v.ok and "perf_bits=16; regenerate with --perf-bits" in v.problems[0]
