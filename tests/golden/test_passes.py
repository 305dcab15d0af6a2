"""Layers larger than the buffers as passes (``golden.passes``): the planner, the assembly, the RTL."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from golden.config import ArrayConfig
from golden.conv import conv2d
from golden.encode import encode, image_words
from golden.epilogue import OutputStage
from golden.layer import Layer
from golden.passes import _act_transfer, band_layer, fit_or_plan, plan, subsampled, tile_rows
from golden.timing import simulate
from tests.support import EPILOGUE_ARRAY, random_layer

SMALL = dict(rows=2, cols=3, acc_depth=4, act_depth=300, weight_depth=256, index_depth=128, out_depth=120,
             epilogue=0)  # no output stage: passes of filter chunks and bands only
EPI_SMALL = EPILOGUE_ARRAY


def _layers(rng):
    for stride, pad, r in ((1, 0, 3), (1, 1, 3), (2, 1, 3), (2, 0, 2), (1, 0, 1)):
        yield random_layer(rng, int(rng.integers(5, 14)), int(rng.integers(2, 5)), int(rng.integers(9, 16)),
                           int(rng.integers(8, 13)), r=r, s=r, stride=stride, padding=pad, kernel_density=0.6)


@pytest.mark.parametrize("dataflow", ["dense", "kernel", "element"])
def test_passes_fit_and_assemble_the_layer_exactly(dataflow):
    cfg = ArrayConfig(dataflow=dataflow, **SMALL)
    for ly in _layers(np.random.default_rng(1)):
        pl = plan(ly, cfg)
        assert len(pl.passes) > 1  # every layer here is larger than a buffer
        outs = []
        for p in pl.passes:
            encode(p.layer, cfg)  # fits: raises otherwise
            outs.append(conv2d(p.layer.weights, p.layer.activations, p.layer.stride, p.layer.padding, cfg.acc_bits))
        assert np.array_equal(pl.assemble(outs), conv2d(ly.weights, ly.activations, ly.stride, ly.padding,
                                                        cfg.acc_bits))
        loaded = sum(p.layer.activations.size + sum(image_words(p.layer.weights, ly.s, cfg)) for p in pl.passes)
        assert pl.transfer_words == loaded


@pytest.mark.parametrize("with_chunks", [0, 1])
def test_the_plan_has_the_fewest_tile_rows_then_transfers_the_fewest_words(with_chunks):
    """Exhaustive over every split that fits: the planner's plan has the fewest tile rows (no PE row left
    idle that another split would use) and, among those, transfers the fewest words; with or without the
    chunk mapping (the bands are the tiles')."""
    cfg = ArrayConfig(dataflow="kernel", **SMALL, chunks=with_chunks)
    ly = random_layer(np.random.default_rng(4), 13, 3, 12, 10, padding=1, kernel_density=0.5)
    pl = plan(ly, cfg)
    best = None
    for chunk, band in itertools.product(range(cfg.acc_depth, ly.m + cfg.acc_depth, cfg.acc_depth),
                                         range(1, ly.e + 1)):
        chunk = min(chunk, ly.m)
        layers = [band_layer(ly, m0, min(m0 + chunk, ly.m), e0, min(e0 + band, ly.e))
                  for m0 in range(0, ly.m, chunk) for e0 in range(0, ly.e, band)]
        try:
            for p in layers:
                encode(p, cfg)
        except ValueError:
            continue
        words = sum(p.activations.size + sum(image_words(p.weights, ly.s, cfg)) for p in layers)
        key = (tile_rows(ly.e, band, cfg.rows), words)
        best = key if best is None else min(best, key)
    assert (tile_rows(ly.e, pl.band, cfg.rows), pl.transfer_words) == best
    assert tile_rows(10, 4, 4) == 3 and tile_rows(10, 3, 4) == 4 and tile_rows(10, 10, 4) == 3


def test_a_band_of_a_padded_layer_carries_its_padding():
    ly = Layer(np.ones((2, 1, 3, 3), np.int64), np.arange(30).reshape(1, 5, 6), 1, 1)  # E = 5, F = 6
    mid = band_layer(ly, 0, 2, 1, 3)  # output rows 1, 2: input rows 0..3, padded columns
    assert mid.padding == 0 and mid.activations.shape == (1, 4, 8)
    assert np.array_equal(mid.activations[0, :, 1:7], ly.activations[0, 0:4])
    assert _act_transfer(ly, 2) == 1 * (4 + 4 + 3) * 8  # bands of rows 0-1, 2-3, 4 (halo loaded again)


def test_channel_chunks_need_the_output_stage_and_say_which_flags_run_the_layer():
    ly = Layer(np.ones((2, 40, 3, 3), np.int64), np.ones((40, 6, 20), np.int64), 1, 1)
    with pytest.raises(ValueError, match=r"^one output row needs 2640 activation words \(C=40 channels of 3 "
                                         r"input rows\) but act_depth is 300: splitting the input channels needs "
                                         r"the output stage to add partial sums \(regenerate with --epilogue 1, or "
                                         r"with --act-depth 2640\)$"):
        plan(ly, ArrayConfig(dataflow="kernel", **SMALL))
    with pytest.raises(ValueError, match=r"one output row of one input channel needs 66 activation words but "
                                         r"act_depth is 60 \(regenerate with --act-depth 66\)"):
        plan(ly, ArrayConfig(dataflow="kernel", **dict(SMALL, act_depth=60, epilogue=1)))


def _chunked(rng, requant: bool):
    """A layer of more channels than one output row of the activation buffer holds, with a bias (and
    the epilogue)."""
    ly = random_layer(rng, 9, 11, 7, 9, padding=1, kernel_density=0.7)
    m = ly.m
    stage = OutputStage(bias=rng.integers(-3000, 3000, m))
    if requant:
        stage = OutputStage(bias=stage.bias, mult=rng.integers(1 << 14, 1 << 16, m), shift=rng.integers(12, 20, m),
                            relu=True)
    return Layer(ly.weights, ly.activations, 1, 1, out=stage)


@pytest.mark.parametrize("requant", [False, True])
def test_channel_chunks_add_up_in_the_array_and_requantize_once(requant):
    """Passes over input channels: the first starts from the bias, each later one from the golden
    partial sums of the chunks before, the last requantizes; assembled, the layer's expected outputs."""
    cfg = ArrayConfig(dataflow="kernel", **EPI_SMALL)
    ly = _chunked(np.random.default_rng(3), requant)
    pl = plan(ly, cfg)
    assert 1 < pl.channel_chunk < ly.c and len(pl.passes) >= 3
    outs = []
    for p in pl.passes:
        encode(p.layer, cfg)
        out = p.layer.out
        assert (out.bias is not None) == (p.c0 == 0) and (out.psum is not None) == (p.c0 > 0)
        assert out.requant == (requant and p.c1 == ly.c)
        outs.append(p.layer.expected(cfg))
    assert np.array_equal(pl.assemble(outs), ly.expected(cfg))
    psum_words = sum(p.layer.out.psum.size for p in pl.passes if p.layer.out.psum is not None)
    loaded = sum(p.layer.activations.size + sum(image_words(p.layer.weights, ly.s, cfg)) for p in pl.passes)
    params = (1 + requant) * ly.m * -(-ly.e // pl.band)
    assert pl.transfer_words == loaded + psum_words + params


def test_filters_beyond_the_parameter_memory_run_in_filter_chunks():
    cfg = ArrayConfig(dataflow="kernel", **dict(EPI_SMALL, act_depth=4096, out_depth=4096, param_depth=4))
    ly = _chunked(np.random.default_rng(4), True)
    pl = plan(ly, cfg)
    assert pl.chunk == 4 and pl.channel_chunk == ly.c
    assert np.array_equal(pl.assemble([p.layer.expected(cfg) for p in pl.passes]), ly.expected(cfg))


@pytest.mark.parametrize("requant", [False, True])
def test_channel_chunks_run_exactly_on_the_rtl(requant):
    """Channel-chunked passes (partial sums through the output buffer), with a bias and, on the last
    chunk, the epilogue, on Verilator (the native driver) under load gaps and backpressure."""
    from sim.run import run_passes, verilator_runner

    cfg = ArrayConfig(dataflow="kernel", **EPI_SMALL)
    ly = _chunked(np.random.default_rng(3), requant)
    pl = plan(ly, cfg)
    rep, outputs = run_passes(ly, pl, verilator_runner(dict(seed=4, load_gap=0.2, backpressure=0.3, check=False,
                                                            harness="native"),
                                                       "passes-channels"))
    assert rep["outputs_match"] and rep["cycles_match"] and rep["counters_match"], rep.get("problems")
    assert np.array_equal(outputs, ly.expected(cfg))
    assert rep["plan"]["channels_per_pass"] == pl.channel_chunk < ly.c


@pytest.mark.parametrize("stride,h,w", [(2, 9, 8), (2, 8, 8), (3, 10, 7), (4, 9, 13)])
def test_a_strided_1x1_layer_runs_at_stride_1_on_the_pixels_it_reads(stride, h, w):
    """A 1x1 layer with stride s reads every s-th row and column: it runs as the same layer at stride 1 on
    those pixels, with the layer's outputs exactly, from a smaller window (on an array whose max_stride is
    below s too); other layers are left as they are."""
    cfg = ArrayConfig(dataflow="kernel", **dict(EPI_SMALL, max_stride=2))
    rng = np.random.default_rng(stride * 100 + h)
    ly = random_layer(rng, 6, 3, h, w, r=1, s=1, stride=stride, kernel_density=0.5)
    ly = Layer(ly.weights, ly.activations, stride, 0, out=OutputStage(bias=rng.integers(-500, 500, ly.m)))
    run = subsampled(ly)
    assert run.stride == 1 and (run.e, run.f) == (ly.e, ly.f) and run.activations.shape == (3, ly.e, ly.f)
    assert np.array_equal(run.expected(cfg), ly.expected(cfg))
    pl = fit_or_plan(ly, cfg)
    assert pl is not None and pl.layer.stride == 1 and pl.subsample == stride
    assert np.array_equal(pl.assemble([p.layer.expected(cfg) for p in pl.passes]), ly.expected(cfg))
    if stride <= cfg.max_stride:  # the window shrinks from ((rows-1)*s + 1) x ((cols-1)*s + 1) to rows x cols
        roomy = ArrayConfig(dataflow="kernel", **dict(EPI_SMALL, act_depth=4096))  # the whole input fits too
        assert simulate(encode(run, roomy)).busy_cycles < simulate(encode(ly, roomy)).busy_cycles
    for other in (random_layer(rng, 4, 2, 9, 9, r=3, s=3, stride=2, padding=1),
                  random_layer(rng, 4, 2, 9, 9, r=1, s=1)):
        assert subsampled(other) is other
    assert fit_or_plan(random_layer(rng, 4, 2, 9, 9, r=3, s=3, stride=2, padding=1), cfg) is None


def test_assembly_checks_the_pass_outputs():
    cfg = ArrayConfig(dataflow="kernel", **SMALL)
    pl = plan(random_layer(np.random.default_rng(2), 9, 2, 12, 12, padding=1), cfg)
    with pytest.raises(ValueError, match="pass outputs for a plan of"):
        pl.assemble([])
    with pytest.raises(ValueError, match=r"output has shape \(1, 1, 1\)"):
        pl.assemble([np.zeros((1, 1, 1))] * len(pl.passes))


@pytest.mark.parametrize("shape,split", [((40, 16, 24, 24), "bands"), ((300, 4, 6, 6), "chunks")])
def test_a_layer_larger_than_the_buffers_runs_exactly_on_the_rtl(shape, split):
    """Bands of output rows (activations over act_depth) and filter chunks (many filters on a small
    input: loading the input twice is cheaper than the weights twice) on the default kernel array (its
    Verilator model is shared with the other tests), under load gaps and backpressure: every pass
    exact, and the assembled layer."""
    from sim.run import run_passes, verilator_runner

    cfg = ArrayConfig(dataflow="kernel")
    ly = random_layer(np.random.default_rng(5), *shape, padding=1, kernel_density=0.3)
    pl = plan(ly, cfg)
    assert (pl.band < ly.e and pl.chunk == ly.m) if split == "bands" else (pl.chunk < ly.m and pl.band == ly.e)
    assert len(pl.passes) >= 2
    rep, outputs = run_passes(ly, pl, verilator_runner(dict(seed=3, load_gap=0.2, backpressure=0.3, check=False,
                                                            harness="native"),
                                                       f"passes-{split}"))
    assert rep["outputs_match"] and rep["cycles_match"] and rep["counters_match"]
    assert np.array_equal(outputs, conv2d(ly.weights, ly.activations, 1, 1, cfg.acc_bits))
    assert len(rep["passes"]) == len(pl.passes) and rep["cycles"] == sum(p["cycles"] for p in rep["passes"])
