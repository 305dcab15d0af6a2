"""A convolution layer as the user hands it to the array, and the checks that it fits.

Every check raises ``ValueError`` with one line naming what is wrong and what to change (a layer that
breaks several limits of the array names them all, joined by ``"; "``): a layer that does not fit must
fail before a Verilator build, never be truncated silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ArrayConfig
from .conv import conv2d, output_size
from .epilogue import OutputStage


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class Layer:
    """Weights ``(M, C, R, S)``, activations ``(C, H, W)``, stride and zero padding, and optionally what
    the output stage does to the sums (``out``: bias or partial sums, the int8 epilogue)."""

    weights: np.ndarray
    activations: np.ndarray
    stride: int = 1
    padding: int = 0
    out: OutputStage | None = None

    def __post_init__(self) -> None:
        w, a = self.weights, self.activations
        if not isinstance(w, np.ndarray) or w.ndim != 4:
            raise ValueError(f"weights must be a 4-D integer array (M, C, R, S), not {_describe(w)}")
        if not isinstance(a, np.ndarray) or a.ndim != 3:
            raise ValueError(f"activations must be a 3-D integer array (C, H, W), not {_describe(a)}")
        for name, arr in (("weights", w), ("activations", a)):
            if not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"{name} must have an integer dtype, not {arr.dtype}; quantize first")
            if arr.size == 0:
                raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
        if w.shape[1] != a.shape[0]:
            raise ValueError(f"weights have C={w.shape[1]} input channels but activations have C={a.shape[0]}")
        for name, v, lo in (("stride", self.stride, 1), ("padding", self.padding, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, not {v!r}")
        object.__setattr__(self, "stride", int(self.stride))
        object.__setattr__(self, "padding", int(self.padding))
        if self.padding >= max(self.r, self.s):
            raise ValueError(f"padding {self.padding} must be smaller than the kernel ({self.r}x{self.s}); "
                             f"use padding <= {max(self.r, self.s) - 1}")
        if self.e < 1 or self.f < 1:
            raise ValueError(f"a {self.r}x{self.s} kernel does not fit a {self.h}x{self.w} input "
                             f"with padding {self.padding}")
        if self.out is not None:
            object.__setattr__(self, "out", self.out.checked(self.m, self.e, self.f))

    m = property(lambda self: int(self.weights.shape[0]))
    c = property(lambda self: int(self.weights.shape[1]))
    r = property(lambda self: int(self.weights.shape[2]))
    s = property(lambda self: int(self.weights.shape[3]))
    h = property(lambda self: int(self.activations.shape[1]))
    w = property(lambda self: int(self.activations.shape[2]))

    @property
    def e(self) -> int:
        return output_size(self.h, self.r, self.stride, self.padding)

    @property
    def f(self) -> int:
        return output_size(self.w, self.s, self.stride, self.padding)

    def fit_problems(self, cfg: ArrayConfig) -> list[tuple[str, str]]:
        """Every limit of ``cfg`` this layer breaks, as ``(flag, problem)``: the flag to change and one
        phrase naming the problem and its fix (empty if the layer fits, as far as the layer alone tells;
        the weight and index images are checked by ``golden.encode.encode``)."""
        problems = []
        if self.r > cfg.max_kernel or self.s > cfg.max_kernel:
            problems.append(("--max-kernel", f"kernel {self.r}x{self.s} exceeds max_kernel={cfg.max_kernel} "
                                             f"(regenerate with --max-kernel {max(self.r, self.s)})"))
        if self.stride > cfg.max_stride:
            problems.append(("--max-stride", f"stride {self.stride} exceeds max_stride={cfg.max_stride} "
                                             f"(regenerate with --max-stride {self.stride})"))
        for name, arr, bits, flag in (("weights", self.weights, cfg.weight_bits, "--weight-bits"),
                                      ("activations", self.activations, cfg.act_bits, "--act-bits")):
            lo, hi = _signed_range(bits)
            amin, amax = int(arr.min()), int(arr.max())
            if amin < lo or amax > hi:
                problems.append((flag, f"{name} range [{amin}, {amax}] does not fit {bits}-bit signed [{lo}, {hi}] "
                                       f"(requantize or regenerate with {flag} {_bits_needed(amin, amax)})"))
        acts = self.c * self.h * self.w
        if acts > cfg.act_depth:
            problems.append(("--act-depth", f"activations need {acts} words but act_depth is {cfg.act_depth} "
                                            f"(regenerate with --act-depth {acts} or split the layer)"))
        outs = self.m * self.e * self.f
        if outs > cfg.out_depth:
            problems.append(("--out-depth", f"outputs need {outs} words but out_depth is {cfg.out_depth} "
                                            f"(regenerate with --out-depth {outs} or split the layer)"))
        if self.out is not None:
            if not cfg.epilogue:
                problems.append(("--epilogue", f"the layer has an output stage ({self._out_what()}) but the array "
                                               f"has none (regenerate with --epilogue 1)"))
            elif self.m > cfg.param_depth and (self.out.bias is not None or self.out.requant):
                problems.append(("--param-depth", f"{self.m} output channels need a bias/requantization each but "
                                                  f"param_depth is {cfg.param_depth} (regenerate with --param-depth "
                                                  f"{self.m} or split the filters)"))
            problems += [("--acc-bits", text) for text in self.out.value_problems(cfg.acc_bits)]
        return problems

    def _out_what(self) -> str:
        out = self.out
        parts = [name for name in ("bias", "psum") if getattr(out, name) is not None]
        return ", ".join(parts + (["requantization"] if out.requant else []))

    def expected(self, cfg: ArrayConfig) -> np.ndarray:
        """The outputs ``(M, E, F)`` an array built with ``cfg`` must produce: the conv sums wrapped to
        ``acc_bits`` (``golden.conv``), through the output stage if the layer has one."""
        sums = conv2d(self.weights, self.activations, self.stride, self.padding, cfg.acc_bits)
        return sums if self.out is None else self.out.apply(sums, cfg.acc_bits, cfg.act_bits)

    def check_fits(self, cfg: ArrayConfig) -> None:
        """Raise ``ValueError`` if this layer cannot run on an array built with ``cfg``: ONE line naming
        every limit it breaks (joined by ``"; "``), each with the flag to change."""
        problems = self.fit_problems(cfg)
        if problems:
            raise ValueError("; ".join(text for _, text in problems))


def _bits_needed(lo: int, hi: int) -> int:
    bits = 2
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"shape {x.shape}"
    return type(x).__name__
