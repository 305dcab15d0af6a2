"""Integer reference convolution: the arithmetic the PE array must reproduce bit for bit.

Semantics (the contract with the RTL):
- weights ``W[M][C][R][S]`` and activations ``A[C][H][W]`` are signed integers;
- zero padding of ``padding`` pixels on every side, stride ``stride`` in both directions;
- every product is exact; the sum wraps modulo ``2**acc_bits`` into two's complement, which is
  what an ``acc_bits``-wide accumulator does. Wrapping (not saturating) is chosen because the sum of
  wrapped partial sums equals the wrapped total in any order, so sparse dataflows that skip or
  reorder MACs give identical results.
"""

from __future__ import annotations

import numpy as np


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output extent of one spatial dimension (floor division, as in every framework)."""
    return (size + 2 * padding - kernel) // stride + 1


def wrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Reduce integers to ``bits``-bit two's complement, as a register of that width holds them."""
    mod = 1 << bits
    half = 1 << (bits - 1)
    v = np.asarray(values)
    if v.dtype == np.int64 and bits <= 62 and magnitude(v) < 1 << 62:
        return ((v + half) % mod) - half  # no int64 step can overflow
    v = v.astype(object)  # exact: sums of wide products can exceed int64 before wrapping
    r = ((v + half) % mod) - half
    return r.astype(np.int64) if bits <= 62 else r


def magnitude(x: np.ndarray) -> int:
    """The largest absolute value in ``x``, as a Python integer (0 when empty; no int64 overflow)."""
    return max(abs(int(x.max())), abs(int(x.min()))) if x.size else 0


FLOAT_EXACT = 1 << 53
"""Integers below this magnitude are exact in float64, and so is every sum of them that stays below it."""


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of integer matrices, exactly, as fast as the operands allow: in float64 (BLAS) when no
    partial sum can reach 2**53 (every intermediate of any summation order is then an exact integer),
    in int64 when none can reach 2**63, in Python integers otherwise."""
    k = a.shape[1]
    bound = magnitude(a) * magnitude(b) * k
    if bound < FLOAT_EXACT:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    if bound < 1 << 63:
        return a.astype(np.int64) @ b.astype(np.int64)
    return a.astype(object).dot(b.astype(object))


def conv2d(weights: np.ndarray, activations: np.ndarray, stride: int = 1, padding: int = 0,
           acc_bits: int = 32) -> np.ndarray:
    """Reference convolution ``out[m, y, x] = sum_{c,r,s} W[m,c,r,s] * A[c, y*st+r-p, x*st+s-p]``.

    Returns an ``int64`` array ``(M, E, F)`` already wrapped to ``acc_bits`` (object dtype past 62 bits).
    Computed as one exact integer matrix product (im2col, :func:`exact_matmul`), deliberately unlike the
    RTL's schedule. Activations ``(N, C, H, W)`` give ``(N, M, E, F)``, every image as if alone (one
    product for all of them: a test set's int8 accuracy in one call).
    """
    w = np.asarray(weights, dtype=np.int64)
    a = np.asarray(activations, dtype=np.int64)
    if a.ndim == 3:
        return conv2d(w, a[None], stride, padding, acc_bits)[0]
    m, c, r, s = w.shape
    n, c2, h, wd = a.shape
    if c != c2:
        raise ValueError(f"weights have {c} input channels but activations have {c2}")
    e = output_size(h, r, stride, padding)
    f = output_size(wd, s, stride, padding)
    if e < 1 or f < 1:
        raise ValueError(f"a {r}x{s} kernel does not fit a {h}x{wd} input with padding {padding}")
    ap = np.pad(a, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((c, r, s, n, e, f), dtype=np.int64)
    for i in range(r):
        for j in range(s):
            cols[:, i, j] = ap[:, :, i:i + stride * (e - 1) + 1:stride,
                               j:j + stride * (f - 1) + 1:stride].transpose(1, 0, 2, 3)
    out = exact_matmul(w.reshape(m, c * r * s), cols.reshape(c * r * s, n * e * f))
    return wrap(out.reshape(m, n, e, f).transpose(1, 0, 2, 3), acc_bits)
