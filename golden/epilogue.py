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

import numpy as np


def _check_params(mult: np.ndarray, shift: np.ndarray, channels: int, mult_bits: int, shift_max: int) -> None:
    for name, arr, hi in (("mult", mult, (1 << mult_bits) - 1), ("shift", shift, shift_max)):
        if arr.shape != (channels,):
            raise ValueError(f"{name} must have one value per output channel ({channels}), not shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be integers, not {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > hi):
            raise ValueError(f"{name} values must be in [0, {hi}], not [{int(arr.min())}, {int(arr.max())}]")


def epilogue(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, *, relu: bool, act_bits: int = 8,
             mult_bits: int = 16, shift_max: int = 63) -> np.ndarray:
    """The next layer's activations from accumulators ``acc`` ``(M, E, F)`` (see the module docstring).

    ``mult`` and ``shift`` have one integer per output channel; ``mult`` in ``[0, 2**mult_bits)``,
    ``shift`` in ``[0, shift_max]``. Raises ``ValueError`` naming the first bad argument.
    """
    acc = np.asarray(acc)
    if acc.ndim != 3 or not np.issubdtype(acc.dtype, np.integer):
        raise ValueError(f"acc must be a 3-D integer array (M, E, F), not {acc.dtype} of shape {acc.shape}")
    mult, shift = np.asarray(mult), np.asarray(shift)
    _check_params(mult, shift, acc.shape[0], mult_bits, shift_max)
    y = [int(v) for v in acc.reshape(-1)]
    per = acc.shape[1] * acc.shape[2]
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
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


def requant_params(scale: float, mult_bits: int = 16, shift_max: int = 63) -> tuple[int, int]:
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
