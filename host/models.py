"""ONNX graphs built node by node (``onnx.helper``), and the networks ``host.train`` trains on small images.

:class:`Builder` appends Conv/ReLU/pool/Add nodes with He-scaled random weights (seeded), the start
of training from scratch and of ``bench.models``' published shapes alike. :data:`TRAINABLE` holds the
networks ``python -m host.train --model`` offers, sized by the input: :func:`small` (a few thousand
weights, for 8x8 digits) and :func:`resnet8` (MLPerf Tiny's ResNet-8 without batch normalization, for
8x8 or 32x32 inputs). They live in ``host`` because ``host.train`` builds them and imports point down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Builder:
    """Appends nodes to a graph under construction; each method returns its output tensor's name."""

    def __init__(self, channels: int, size: int, seed: int = 0):
        from onnx import TensorProto, helper

        self.helper, self.tp = helper, TensorProto
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.shape = (channels, size, size)
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])
        self.k = 0

    def _name(self, kind: str) -> str:
        self.k += 1
        return f"{kind}{self.k}"

    def _init(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv(self, x: str, m: int, k: int, stride: int = 1, pad: int | None = None, relu: bool = True) -> str:
        c = self.shape[0]
        pad = k // 2 if pad is None else pad
        name = self._name("conv")
        w = self.rng.normal(0, np.sqrt(2.0 / (c * k * k)), (m, c, k, k))
        b = self.rng.normal(0, 0.05, m)
        self.nodes.append(self.helper.make_node("Conv", [x, self._init(name + "_w", w), self._init(name + "_b", b)],
                                                [name], name=name, kernel_shape=[k, k], strides=[stride, stride],
                                                pads=[pad] * 4))
        size = (self.shape[1] + 2 * pad - k) // stride + 1
        self.shape = (m, size, size)
        return self.relu(name) if relu else name

    def relu(self, x: str) -> str:
        name = self._name("relu")
        self.nodes.append(self.helper.make_node("Relu", [x], [name], name=name))
        return name

    def maxpool(self, x: str, k: int, stride: int, pad: int = 0) -> str:
        name = self._name("maxpool")
        self.nodes.append(self.helper.make_node("MaxPool", [x], [name], name=name, kernel_shape=[k, k],
                                                strides=[stride, stride], pads=[pad] * 4))
        size = (self.shape[1] + 2 * pad - k) // stride + 1
        self.shape = (self.shape[0], size, size)
        return name

    def add(self, a: str, b: str, relu: bool = True) -> str:
        name = self._name("add")
        self.nodes.append(self.helper.make_node("Add", [a, b], [name], name=name))
        return self.relu(name) if relu else name

    def head(self, x: str, classes: int, pool: bool = True) -> str:
        """Global average pool (unless ``pool`` is false), flatten, fully connected."""
        gap = self._name("gap") if pool else None
        flat, fc = self._name("flatten"), self._name("fc")
        if pool:
            self.nodes.append(self.helper.make_node("GlobalAveragePool", [x], [gap], name=gap))
            x, self.shape = gap, (self.shape[0], 1, 1)
        c = int(np.prod(self.shape))
        self.nodes.append(self.helper.make_node("Flatten", [x], [flat], name=flat))
        w = self.rng.normal(0, np.sqrt(1.0 / c), (classes, c))
        self.nodes.append(self.helper.make_node("Gemm", [flat, self._init(fc + "_w", w),
                                                         self._init(fc + "_b", self.rng.normal(0, 0.05, classes))],
                                                [fc], name=fc, transB=1))
        self.shape = (classes,)
        return fc

    def save(self, out: str, path: str | Path, name: str) -> Path:
        import onnx

        y = self.helper.make_tensor_value_info(out, self.tp.FLOAT, None)
        graph = self.helper.make_graph(self.nodes, name, [self.input], [y], self.inits)
        model = self.helper.make_model(graph, opset_imports=[self.helper.make_opsetid("", 13)])
        path = Path(path)
        onnx.save(model, str(path))
        return path



def small(path: str | Path, shape: tuple[int, int, int] = (1, 8, 8), classes: int = 10, seed: int = 0) -> Path:
    """Three 3x3 convs of 32 channels (a 2x2 max pool after the second) and a fully connected layer on the
    flattened maps: 24 k weights, small enough for the RTL. On 8x8 digits the classifier gains from
    knowing where a stroke is (``host.train`` defaults, seeds 0-2: 98.0 % mean test accuracy, 96.6 % with
    a global average pool instead), and the first conv has one input channel, so kernel pruning removes
    whole filters there: 32 leave 8 at 75 % (an earlier 16-filter version kept 4 and reached 93.6 % after
    the same fine-tuning)."""
    b = Builder(shape[0], shape[1], seed)
    x = b.conv("x", 32, 3)
    x = b.maxpool(b.conv(x, 32, 3), 2, 2)
    x = b.conv(x, 32, 3)
    return b.save(b.head(x, classes, pool=False), path, "small")


def resnet8(path: str | Path, shape: tuple[int, int, int] = (3, 32, 32), classes: int = 10, seed: int = 0) -> Path:
    """ResNet-8 (MLPerf Tiny's CIFAR-10 network, batch normalization left out): a 3x3 stem of 16 channels,
    three basic blocks of 16, 32 and 64 channels (the last two with stride 2 and a 1x1 projection), global
    average pool, fully connected. 8x8 inputs end at 2x2, 32x32 at 8x8."""
    b = Builder(shape[0], shape[1], seed)
    x = b.conv("x", 16, 3)
    for stage, m in enumerate((16, 32, 64)):
        stride = 2 if stage else 1
        before = b.shape
        y = b.conv(b.conv(x, m, 3, stride=stride), m, 3, relu=False)
        if stride != 1 or before[0] != m:
            after, b.shape = b.shape, before
            x = b.conv(x, m, 1, stride=stride, pad=0, relu=False)
            b.shape = after
        x = b.add(x, y)
    return b.save(b.head(x, classes), path, "resnet8")


TRAINABLE = {"small": small, "resnet8": resnet8}
"""The networks ``python -m host.train --model`` builds: ``f(path, shape, classes, seed)``."""
