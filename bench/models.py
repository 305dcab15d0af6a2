"""CNNs as ONNX graphs at their published shapes, with random weights (``onnx.helper``).

``python -m bench.models --model resnet18 -o resnet18.onnx`` writes one; ``host.net`` runs it. The
weights are random (He-scaled normal, biases small), so outputs mean nothing, but every shape, stride,
padding and residual connection is the published network's (batch 1, 224x224 RGB input): what the
array's cycles, passes and traffic depend on. A trained model in ONNX runs the same way.
"""

from __future__ import annotations

import argparse
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

    def head(self, x: str, classes: int) -> str:
        """Global average pool, flatten, fully connected."""
        gap, flat, fc = self._name("gap"), self._name("flatten"), self._name("fc")
        c = self.shape[0]
        self.nodes.append(self.helper.make_node("GlobalAveragePool", [x], [gap], name=gap))
        self.nodes.append(self.helper.make_node("Flatten", [gap], [flat], name=flat))
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


def small_cnn(path: str | Path, size: int = 12, seed: int = 0) -> Path:
    """Conv + ReLU, max pool, a residual block (two convs and an add), global average pool, a fully
    connected layer: every op ``host.net`` supports, small enough for the RTL."""
    b = Builder(3, size, seed)
    x = b.conv("x", 8, 3)
    x = b.maxpool(x, 2, 2)
    y = b.conv(x, 8, 3)
    y = b.conv(y, 8, 3, relu=False)
    x = b.add(x, y)
    x = b.conv(x, 12, 3, stride=2)
    return b.save(b.head(x, 10), path, "small_cnn")


def resnet18(path: str | Path, seed: int = 0) -> Path:
    """ResNet-18 (He et al. 2016) at 224x224: 7x7/2 stem, 3x3/2 max pool, four stages of two basic
    blocks (64, 128, 256, 512 channels; 1x1/2 projections), average pool, 1000-way fully connected."""
    b = Builder(3, 224, seed)
    x = b.maxpool(b.conv("x", 64, 7, stride=2, pad=3), 3, 2, 1)
    for stage, m in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage and not block else 1
            shape = b.shape
            y = b.conv(x, m, 3, stride=stride)
            y = b.conv(y, m, 3, relu=False)
            if stride != 1 or shape[0] != m:
                after = b.shape
                b.shape = shape
                x = b.conv(x, m, 1, stride=stride, pad=0, relu=False)
                b.shape = after
            x = b.add(x, y)
    return b.save(b.head(x, 1000), path, "resnet18")


def vgg16(path: str | Path, seed: int = 0) -> Path:
    """VGG-16 (Simonyan and Zisserman 2015) at 224x224: thirteen 3x3 convs in five stages with 2x2 max
    pools; the classifier as one average pool and a 1000-way fully connected layer (the 4096-wide
    fully connected layers of the paper are left out: no conv dataflow applies to them)."""
    b = Builder(3, 224, seed)
    x = "x"
    for m, n in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(n):
            x = b.conv(x, m, 3)
        x = b.maxpool(x, 2, 2)
    return b.save(b.head(x, 1000), path, "vgg16")


MODELS = {"small": small_cnn, "resnet18": resnet18, "vgg16": vgg16}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="MODEL.onnx")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(MODELS[args.model](args.output, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
