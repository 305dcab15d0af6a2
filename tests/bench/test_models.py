"""The full-size networks of ``bench.models`` have their published shapes."""

from __future__ import annotations

import numpy as np
import pytest

from bench.models import MODELS

pytest.importorskip("onnx")


def _convs(path):
    import onnx

    model = onnx.load(str(path))
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    shapes = [inits[n.input[1]] for n in convs]
    strides = [next(a.ints[0] for a in n.attribute if a.name == "strides") for n in convs]
    return shapes, strides, sum(int(np.prod(d)) for d in inits.values())


@pytest.mark.parametrize("name,convs,pointwise,params", [
    ("resnet18", 20, 3, 11_689_512 - 9_600),   # torchvision's count less batch norm's 9,600 parameters
    ("resnet50", 53, 36, 25_557_032 - 53_120),  # less batch norm's 53,120
])
def test_resnets_have_their_published_shapes(tmp_path, name, convs, pointwise, params):
    """Conv count, 1x1 convs, parameters (conv biases stand in for batch norm's shifts: 2 per channel there,
    1 here), and ResNet-50's stride-2 3x3s and projections ("v1.5")."""
    shapes, strides, total = _convs(MODELS[name](tmp_path / f"{name}.onnx"))
    assert len(shapes) == convs
    assert sum(s[2:] == (1, 1) for s in shapes) == pointwise
    bn_shift_less = sum(s[0] for s in shapes)  # one bias per conv output channel here, two BN params there
    assert total == params + bn_shift_less
    if name == "resnet50":
        assert [s for s, st in zip(shapes, strides, strict=True) if st == 2] == [
            (64, 3, 7, 7), (128, 128, 3, 3), (512, 256, 1, 1), (256, 256, 3, 3), (1024, 512, 1, 1),
            (512, 512, 3, 3), (2048, 1024, 1, 1)]
