"""The int8 epilogue: from a layer's accumulators to the next layer's activations (issue 14).

Applied per output channel ``m`` to every accumulator ``y`` (the conv sum with the bias already in it,
wrapped to ``acc_bits`` like every accumulator), in this order:

1. **ReLU** (optional): ``y = max(y, 0)``;
2. **requantization** by an integer multiplier ``mult[m] >= 0`` and right shift ``shift[m] >= 0``:
   ``z = floor((y * mult[m]) / 2**shift[m] + 1/2)``, i.e. rounding half up (towards +inf: -2.5 -> -2,
   2.5 -> 3), computed exactly in integers as ``(y * mult + (1 << (shift - 1))) >> shift`` (an
   arithmetic shift; no rounding term when ``shift == 0``);
3. **saturation** to ``act_bits`` signed: ``clip(z, -2**(act_bits-1), 2**(act_bits-1) - 1)``.

The product ``y * mult`` is exact (``acc_bits + mult_bits`` bits), so no intermediate step wraps or
rounds twice; a zero multiplier gives 0. This is the contract the drain's epilogue hardware is built
to, bit for bit, and what the NumPy int8 network reference uses.

:func:`requant_params` turns a real scale (e.g. ``s_in * s_w / s_out`` of symmetric quantization) into
``(mult, shift)`` with ``mult`` normalised to ``mult_bits`` bits, as TFLite and gemmlowp do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .conv import magnitude, wrap

MULT_BITS = 16
"""Width of the hardware's requantization multiplier (unsigned): the drain's epilogue and its load words."""

SHIFT_BITS = 6
"""Width of the hardware's right shift: shifts 0 .. 63."""

SHIFT_MAX = (1 << SHIFT_BITS) - 1

INIT_CODES = {"zero": 0, "bias": 1, "psum": 2}
"""What a pass's accumulators start from (the ``init`` field of the run-time configuration): nothing,
the bias of each output channel (a layer's first channel chunk), or partial sums of the earlier channel
chunks (``psum``, one per output)."""


def _check_params(mult: np.ndarray, shift: np.ndarray, channels: int, mult_bits: int, shift_max: int) -> None:
    for name, arr, hi in (("mult", mult, (1 << mult_bits) - 1), ("shift", shift, shift_max)):
        if arr.shape != (channels,):
            raise ValueError(f"{name} must have one value per output channel ({channels}), not shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be integers, not {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > hi):
            raise ValueError(f"{name} values must be in [0, {hi}], not [{int(arr.min())}, {int(arr.max())}]")


def epilogue(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, *, relu: bool, act_bits: int = 8,
             mult_bits: int = MULT_BITS, shift_max: int = SHIFT_MAX) -> np.ndarray:
    """The next layer's activations from accumulators ``acc`` ``(M, E, F)`` (see the module docstring).

    ``mult`` and ``shift`` have one integer per output channel; ``mult`` in ``[0, 2**mult_bits)``,
    ``shift`` in ``[0, shift_max]``. Raises ``ValueError`` naming the first bad argument.
    """
    acc = np.asarray(acc)
    if acc.ndim != 3 or not np.issubdtype(acc.dtype, np.integer):
        raise ValueError(f"acc must be a 3-D integer array (M, E, F), not {acc.dtype} of shape {acc.shape}")
    mult, shift = np.asarray(mult), np.asarray(shift)
    _check_params(mult, shift, acc.shape[0], mult_bits, shift_max)
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    if acc.size and magnitude(acc) * (1 << mult_bits) < 1 << 62:  # every step below fits int64 exactly
        v = acc.astype(np.int64)
        v = np.maximum(v, 0) if relu else v
        n = shift.astype(np.int64)[:, None, None]
        z = v * mult.astype(np.int64)[:, None, None]
        z = np.where(n > 0, (z + (np.int64(1) << np.maximum(n - 1, 0))) >> n, z)
        return np.clip(z, lo, hi)
    y = [int(v) for v in acc.reshape(-1)]
    per = acc.shape[1] * acc.shape[2]
    out = np.empty(len(y), dtype=np.int64)
    for i, v in enumerate(y):  # Python integers: exact for any acc_bits + mult_bits
        m = i // per
        if relu and v < 0:
            v = 0
        n = int(shift[m])
        z = v * int(mult[m])
        if n:
            z = (z + (1 << (n - 1))) >> n
        out[i] = min(hi, max(lo, z))
    return out.reshape(acc.shape)


def requant_params(scale: float, mult_bits: int = MULT_BITS, shift_max: int = SHIFT_MAX) -> tuple[int, int]:
    """``(mult, shift)`` with ``mult / 2**shift`` the closest such value to ``scale`` (``scale >= 0``) and
    ``mult`` in ``[2**(mult_bits-1), 2**mult_bits)`` (full precision) unless ``scale`` is 0 or so small
    that ``shift`` would exceed ``shift_max`` (then ``mult`` is smaller, possibly 0)."""
    if not math.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be a finite number >= 0, not {scale!r}")
    if scale == 0:
        return 0, 0
    frac, exp = math.frexp(scale)  # scale = frac * 2**exp, frac in [0.5, 1)
    shift = mult_bits - exp
    if shift < 0:
        raise ValueError(f"scale {scale!r} needs a multiplier wider than {mult_bits} bits")
    shift = min(shift, shift_max)
    mult = round(scale * (1 << shift))
    if mult >= 1 << mult_bits:  # rounding carried into a new bit
        mult, shift = mult >> 1, shift - 1
    return int(mult), int(shift)


def _int_array(name: str, value, shape: tuple) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != shape:
        per = "output" if len(shape) == 3 else "output channel"
        raise ValueError(f"{name} must have shape {shape} (one per {per}), not {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers, not {arr.dtype}; quantize first")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class OutputStage:
    """What the drain does to a pass's accumulators before they reach the output buffer (arrays
    generated with ``--epilogue 1``; ``hdl.epilogue``).

    * ``bias`` ``(M,)`` or ``psum`` ``(M, E, F)`` (not both): added to the conv sums, the sum wrapped to
      ``acc_bits`` like every accumulator. The bias goes into a layer's first channel chunk, the
      partial sums of the chunks before into each later one, so a layer split over its input channels
      adds up in the array (the host never adds partial outputs);
    * ``mult``, ``shift`` ``(M,)`` (together; the last chunk): the int8 epilogue (:func:`epilogue`), with
      ``relu`` before it: the outputs are then ``act_bits``-bit activations of the next layer.

    Without ``mult`` the outputs are the ``acc_bits`` sums (a chunk's partial sums).
    """

    bias: np.ndarray | None = None
    psum: np.ndarray | None = None
    mult: np.ndarray | None = None
    shift: np.ndarray | None = None
    relu: bool = False

    def checked(self, m: int, e: int, f: int) -> OutputStage:
        """This stage with its arrays as int64, checked against a layer of ``M`` filters and ``E x F``
        outputs; ``ValueError`` naming the first problem."""
        if self.bias is not None and self.psum is not None:
            raise ValueError("give bias (a layer's first channel chunk) or psum (a later chunk), not both; "
                             "fold the bias into the first chunk's partial sums")
        if (self.mult is None) != (self.shift is None):
            raise ValueError("requantization needs both mult and shift (one of each per output channel)")
        if self.relu and self.mult is None:
            raise ValueError("relu is part of the epilogue: give mult and shift too (mult=1, shift=0 keeps the scale)")
        fields = {}
        for name, shape in (("bias", (m,)), ("psum", (m, e, f)), ("mult", (m,)), ("shift", (m,))):
            value = getattr(self, name)
            fields[name] = None if value is None else _int_array(name, value, shape)
        if fields["mult"] is not None:
            _check_params(fields["mult"], fields["shift"], m, MULT_BITS, SHIFT_MAX)
        return OutputStage(**fields, relu=bool(self.relu))

    @property
    def init(self) -> str:
        """What the accumulators start from: a key of :data:`INIT_CODES`."""
        return "bias" if self.bias is not None else "psum" if self.psum is not None else "zero"

    @property
    def requant(self) -> bool:
        return self.mult is not None

    def base(self, shape: tuple[int, int, int]) -> np.ndarray:
        """What is added to the conv sums, per output ``(M, E, F)``."""
        if self.bias is not None:
            return np.broadcast_to(self.bias[:, None, None], shape)
        if self.psum is not None:
            return self.psum
        return np.zeros(shape, dtype=np.int64)

    def apply(self, acc: np.ndarray, acc_bits: int, act_bits: int) -> np.ndarray:
        """The pass's outputs from its conv sums ``acc`` ``(M, E, F)`` (already wrapped to ``acc_bits``)."""
        y = wrap(np.asarray(acc, dtype=np.int64) + self.base(acc.shape), acc_bits)
        if not self.requant:
            return y
        return epilogue(y, self.mult, self.shift, relu=self.relu, act_bits=act_bits)

    def value_problems(self, acc_bits: int) -> list[str]:
        """Values that do not fit the array's ``acc_bits``-bit accumulators (each a phrase with the fix)."""
        lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
        out = []
        for name in ("bias", "psum"):
            arr = getattr(self, name)
            if arr is not None and arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
                out.append(f"{name} range [{int(arr.min())}, {int(arr.max())}] does not fit the {acc_bits}-bit "
                           f"accumulators [{lo}, {hi}] (regenerate with a larger --acc-bits)")
        return out
