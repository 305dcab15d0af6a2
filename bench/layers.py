"""Real convolution-layer shapes for the sweeps: at their published sizes, and scaled to fit one run.

* ``cifar``: a VGG-style CIFAR-10 CNN (six 3x3 convolutions, widths 32-32-64-64-128-128 on
  32/32/16/16/8/8-pixel maps, 2x2 max-pooling between pairs -- the shape family of the CIFAR-10
  nets pruned by Anwar et al.).
* ``alexnet``: AlexNet conv3-conv5 as in the Caffe reference model used by Wen et al. (SSL, Table 4):
  13 x 13 maps, 3x3, pad 1; conv3 256 -> 384, conv4 384 -> 384 and conv5 384 -> 256, the last two in
  two groups of which we run ONE (192 -> 192, 192 -> 128; the other group has the same shape and
  cost, so speedup, utilization and per-MAC metrics are those of the whole layer).
* ``cifar-s4``, ``alexnet-s8``: the same layers with the channel counts divided by 4 / 8 (input
  image channels excepted; spatial sizes, kernels, strides and padding unchanged), the smallest
  power-of-two factor at which every layer of the network fits the default buffers in ONE run
  (activations ``C*H*W <= 8192``, weights ``M*C*R*S <= 16384``, outputs ``M*E*F <= 8192``). Quick
  to simulate; the sweep's headline uses the published sizes, which the array runs in passes
  (``golden.passes``: filter chunks, bands of output rows and, with the output stage, input-channel
  chunks).
* ``tiny``: two small layers for tests (not a real network).

Weights are deterministic int8: Gaussian values times a log-normal scale per kernel ``(m, c)`` (so
kernels differ in magnitude as in trained nets and magnitude pruning has something to rank),
quantized so the 99.9th percentile of ``|w|`` maps to 127, with values that round to 0 pushed to
+-1 so the unpruned layer is exactly dense (sparsity 0). Activations are ReLU-like (non-negative,
about half zeros); the array does not skip zero activations, so their values change no metric.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from golden.conv import output_size
from golden.layer import Layer
from golden.prune import PruneResult, prune


@dataclass(frozen=True)
class LayerSpec:
    """One convolution's shape, named ``net.layer``; ``original`` is the unscaled shape, for reports."""

    name: str
    m: int
    c: int
    h: int
    w: int
    r: int = 3
    s: int = 3
    stride: int = 1
    padding: int = 1
    original: str = ""

    @property
    def e(self) -> int:
        return output_size(self.h, self.r, self.stride, self.padding)

    @property
    def f(self) -> int:
        return output_size(self.w, self.s, self.stride, self.padding)

    @property
    def dense_macs(self) -> int:
        return self.m * self.c * self.r * self.s * self.e * self.f

    def shape(self) -> dict[str, int]:
        return dict(M=self.m, C=self.c, H=self.h, W=self.w, R=self.r, S=self.s, stride=self.stride,
                    padding=self.padding)

    def describe(self) -> str:
        return f"{self.c}->{self.m} {self.r}x{self.s} on {self.h}x{self.w} (stride {self.stride}, pad {self.padding})"


PUBLISHED: dict[str, tuple[LayerSpec, ...]] = {
    "cifar": (
        LayerSpec("cifar.conv1", 32, 3, 32, 32),
        LayerSpec("cifar.conv2", 32, 32, 32, 32),
        LayerSpec("cifar.conv3", 64, 32, 16, 16),
        LayerSpec("cifar.conv4", 64, 64, 16, 16),
        LayerSpec("cifar.conv5", 128, 64, 8, 8),
        LayerSpec("cifar.conv6", 128, 128, 8, 8),
    ),
    "alexnet": (
        LayerSpec("alexnet.conv3", 384, 256, 13, 13),
        LayerSpec("alexnet.conv4", 192, 192, 13, 13, original="384->384 on 13x13, 2 groups of 192->192"),
        LayerSpec("alexnet.conv5", 128, 192, 13, 13, original="384->256 on 13x13, 2 groups of 192->128"),
    ),
}
"""The networks' layers at their published sizes (one group of AlexNet's grouped layers)."""

SCALES = {"cifar": 4, "alexnet": 8}
"""Channel divisor per network at which every layer fits the default buffers in one run."""


def scaled(spec: LayerSpec, net: str, factor: int) -> LayerSpec:
    """``spec`` with its channels divided by ``factor`` (3 image channels kept), named ``net-s<factor>.layer``."""
    layer = spec.name.split(".", 1)[1]
    return LayerSpec(f"{net}-s{factor}.{layer}", spec.m // factor, spec.c if spec.c == 3 else spec.c // factor,
                     spec.h, spec.w, spec.r, spec.s, spec.stride, spec.padding,
                     original=spec.original or f"{spec.c}->{spec.m} on {spec.h}x{spec.w}")


NETS: dict[str, tuple[LayerSpec, ...]] = {
    **PUBLISHED,
    **{f"{net}-s{k}": tuple(scaled(spec, net, k) for spec in PUBLISHED[net]) for net, k in SCALES.items()},
    "tiny": (
        LayerSpec("tiny.a", 3, 2, 6, 6, original="test layer"),
        LayerSpec("tiny.b", 4, 3, 5, 5, stride=2, padding=1, original="test layer"),
    ),
}
"""Layer sets by network name (``--layers cifar,alexnet``)."""


def layer_specs(names: list[str] | tuple[str, ...]) -> list[LayerSpec]:
    """Specs for network names (``cifar``) and single layers (``alexnet.conv4``), in the given order."""
    by_name = {spec.name: spec for specs in NETS.values() for spec in specs}
    out: list[LayerSpec] = []
    for name in names:
        if name in NETS:
            out.extend(NETS[name])
        elif name in by_name:
            out.append(by_name[name])
        else:
            raise ValueError(f"unknown layer set {name!r}; choose networks ({', '.join(NETS)}) "
                             f"or layers such as {next(iter(by_name))}")
    return list(dict.fromkeys(out))  # drop repeats, keep order


def _rng(spec: LayerSpec, seed: int, what: str) -> np.random.Generator:
    """A generator that depends only on (seed, layer name, purpose): stable across runs and processes."""
    return np.random.default_rng([seed, zlib.crc32(f"{spec.name}/{what}".encode())])


def dense_weights(spec: LayerSpec, seed: int = 0) -> np.ndarray:
    """Deterministic int8-range weights ``(M, C, R, S)`` with no zeros (see the module docstring)."""
    rng = _rng(spec, seed, "weights")
    scale = rng.lognormal(0.0, 0.5, size=(spec.m, spec.c, 1, 1))
    w = rng.standard_normal((spec.m, spec.c, spec.r, spec.s)) * scale
    q = np.clip(np.rint(w * (127.0 / np.quantile(np.abs(w), 0.999))), -127, 127).astype(np.int64)
    return np.where(q == 0, np.where(w < 0, -1, 1), q)


def activations(spec: LayerSpec, seed: int = 0) -> np.ndarray:
    """Deterministic ReLU-like activations ``(C, H, W)`` in ``[0, 127]``."""
    rng = _rng(spec, seed, "activations")
    return np.clip(np.rint(rng.normal(0.0, 48.0, (spec.c, spec.h, spec.w))), 0, 127).astype(np.int64)


def make_layer(spec: LayerSpec, granularity: str | None = None, sparsity: float = 0.0,
               seed: int = 0) -> tuple[Layer, PruneResult | None]:
    """The layer with its weights magnitude-pruned by :func:`golden.prune.prune` at ``granularity``.

    ``granularity`` None (the dense dataflow) or ``sparsity`` 0 leaves the weights unpruned and returns
    no :class:`PruneResult`.
    """
    w = dense_weights(spec, seed)
    result = None
    if granularity is not None and sparsity > 0:
        result = prune(w, granularity, sparsity)
        w = result.weights
    return Layer(w, activations(spec, seed), spec.stride, spec.padding), result


def kept_energy(spec: LayerSpec, pruned: np.ndarray, seed: int = 0) -> float:
    """Fraction of the squared L2 weight norm that survives pruning (a crude, training-free accuracy proxy)."""
    w = dense_weights(spec, seed).astype(np.float64)
    return float(np.sum(np.asarray(pruned, dtype=np.float64) ** 2) / np.sum(w * w))
