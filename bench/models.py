"""CNNs as ONNX graphs at their published shapes, with random weights (``onnx.helper``).

``python -m bench.models --model resnet18 -o resnet18.onnx`` writes one (``resnet18``, ``resnet50``,
``vgg16``, ``small``); ``host.net`` runs it. The weights are random (He-scaled normal, biases small), so
outputs mean nothing, but every shape, stride, padding and residual connection is the published
network's (batch 1, 224x224 RGB input): what the array's cycles, passes and traffic depend on. A trained
model in ONNX runs the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from host.models import Builder


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


def resnet50(path: str | Path, seed: int = 0) -> Path:
    """ResNet-50 (He et al. 2016; the stride on the bottleneck's 3x3, as torchvision's "v1.5") at 224x224:
    7x7/2 stem, 3x3/2 max pool, stages of 3, 4, 6 and 3 bottlenecks (1x1 to ``m``, 3x3 at ``m``, 1x1 to
    ``4m``; ``m`` = 64, 128, 256, 512) with a 1x1 projection (stride 2 from the second stage on) on each
    stage's first block, average pool, 1000-way fully connected. Most of its MACs are in the 1x1 convs."""
    b = Builder(3, 224, seed)
    x = b.maxpool(b.conv("x", 64, 7, stride=2, pad=3), 3, 2, 1)
    for stage, (m, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
        for block in range(blocks):
            stride = 2 if stage and not block else 1
            shape = b.shape
            y = b.conv(x, m, 1, pad=0)
            y = b.conv(y, m, 3, stride=stride)
            y = b.conv(y, 4 * m, 1, pad=0, relu=False)
            if not block:
                after = b.shape
                b.shape = shape
                x = b.conv(x, 4 * m, 1, stride=stride, pad=0, relu=False)
                b.shape = after
            x = b.add(x, y)
    return b.save(b.head(x, 1000), path, "resnet50")


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


MODELS = {"small": small_cnn, "resnet18": resnet18, "resnet50": resnet50, "vgg16": vgg16}


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
