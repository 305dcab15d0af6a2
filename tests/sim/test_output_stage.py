"""The drain's output stage (``--epilogue 1``): bias, partial sums and the int8 epilogue on the RTL, exact.

Golden side: ``golden.epilogue.OutputStage`` (its arithmetic is ``tests/test_epilogue.py``); here the
layer-level contract (what a layer with an output stage needs, what it loads) and the Verilator runs:
bit-exact outputs, cycles and every counter under load gaps and backpressure.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden.config import ArrayConfig
from golden.encode import encode
from golden.epilogue import OutputStage
from golden.layer import Layer
from golden.timing import EPILOGUE_LATENCY, simulate
from sim.verilator import run_layers
from tests.support import EPILOGUE_ARRAY, output_stage_layers

EPI = EPILOGUE_ARRAY


def test_layers_with_an_output_stage_need_an_array_with_one():
    rng = np.random.default_rng(0)
    ly = output_stage_layers(rng)[2]
    with pytest.raises(ValueError, match="--epilogue 1"):
        encode(ly, ArrayConfig(**dict(EPI, epilogue=0)))
    with pytest.raises(ValueError, match="--param-depth 7"):
        encode(ly, ArrayConfig(**dict(EPI, param_depth=4)))
    too_big = Layer(ly.weights, ly.activations, 1, 1, out=OutputStage(bias=np.full(ly.m, 1 << 40)))
    with pytest.raises(ValueError, match="does not fit the 32-bit accumulators"):
        encode(too_big, ArrayConfig(**EPI))


@pytest.mark.parametrize("bad,match", [
    (dict(bias=np.zeros(3, np.int64), psum=np.zeros((3, 2, 2), np.int64)), "not both"),
    (dict(mult=np.ones(3, np.int64)), "both mult and shift"),
    (dict(relu=True), "relu is part of the epilogue"),
    (dict(bias=np.zeros(4, np.int64)), r"shape \(3,\)"),
    (dict(bias=np.zeros(3)), "integers"),
    (dict(mult=np.full(3, 1 << 16), shift=np.zeros(3, np.int64)), "mult values must be in"),
])
def test_output_stage_errors_name_the_problem(bad, match):
    with pytest.raises(ValueError, match=match):
        Layer(np.ones((3, 1, 1, 1), np.int64), np.ones((1, 2, 2), np.int64), out=OutputStage(**bad))


def test_the_stage_adds_its_pipeline_to_the_run_and_loads_its_words():
    cfg = ArrayConfig(**EPI)
    ly = output_stage_layers(np.random.default_rng(1))[2]  # bias + epilogue
    enc = encode(ly, cfg)
    plain = encode(Layer(ly.weights, ly.activations, 1, 1), ArrayConfig(**dict(EPI, epilogue=0)))
    assert simulate(enc).busy_cycles == simulate(plain).busy_cycles + EPILOGUE_LATENCY
    images = enc.images()
    assert len(images["bias"]) == ly.m and len(images["requant"]) == ly.m and "psum" not in images
    assert enc.runtime_config()["init"] == 1 and enc.runtime_config()["relu"] == 1


def test_output_stage_bit_and_cycle_exact_on_the_rtl():
    """Bias, partial sums and the epilogue with its edge cases, on Verilator under stalls."""
    cfg = ArrayConfig(dataflow="kernel", **EPI)
    layers = output_stage_layers(np.random.default_rng(5))
    results = run_layers(cfg, layers, name="epilogue", seed=5, load_gap=0.3, backpressure=0.4)
    assert len(results) == len(layers)
    for res in results:
        assert res["outputs_match"], res["problems"]
        assert res["cycles"] == res["predicted_cycles"] and res["perf"] == res["predicted_perf"], res["problems"]
    # the epilogue's outputs are act_bits activations; the edge layer saturates both ways
    edge = layers[4].expected(cfg)
    assert edge.max() == 127 and edge.min() == -128
