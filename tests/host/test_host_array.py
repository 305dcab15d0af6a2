"""One host API (``host.array``): the same layers through every target give the same, exact results."""

from __future__ import annotations

import numpy as np
import pytest

from golden.config import ArrayConfig
from host.array import Target, run_layers
from tests.support import EPILOGUE_ARRAY, random_layer


@pytest.mark.parametrize("target", ["native", "cocotb", "pysim", pytest.param("board:sim", marks=pytest.mark.slow)])
def test_every_target_runs_the_same_layers_exactly(target):
    """A small layer with a bias and requantization (its outputs are int8 activations) and a plain one,
    on the output-stage array: outputs, cycles and every counter equal the golden model's on each target
    (``board:sim``, the bridge and UART in the Amaranth simulator, with ``-m slow``: ``test_board.py`` runs
    that target's command by default)."""
    from golden.epilogue import OutputStage
    from golden.layer import Layer

    cfg = ArrayConfig(dataflow="kernel", **EPILOGUE_ARRAY)
    rng = np.random.default_rng(4)
    plain = random_layer(rng, 3, 2, 4, 5, padding=1, kernel_density=0.6, wbits=8, abits=8)
    staged = Layer(plain.weights, plain.activations, 1, 1, out=OutputStage(
        bias=rng.integers(-300, 300, 3), mult=rng.integers(1, 1 << 15, 3), shift=np.full(3, 12), relu=True))
    layers = [staged] if target == "board:sim" else [plain, staged]  # the simulated UART is slow
    results = run_layers(cfg, layers, target, name=f"targets-{target.replace(':', '-')}")
    assert len(results) == len(layers)
    for layer, res in zip(layers, results, strict=True):
        assert not res["problems"], res["problems"]
        assert np.array_equal(res["outputs"], layer.expected(cfg))
        assert res["cycles"] == res["predicted_cycles"] and res["perf"] == res["predicted_perf"]


def test_targets_are_parsed_with_a_clear_error():
    assert Target.parse("board:/dev/ttyUSB0") == Target("board", "/dev/ttyUSB0")
    assert str(Target.parse("board:sim")) == "board:sim" and not Target.parse("board:sim").parallel
    for bad in ("verilator", "board", "native:x"):
        with pytest.raises(ValueError, match=r"unknown target .* choose native, cocotb, pysim, board:PORT"):
            Target.parse(bad)
