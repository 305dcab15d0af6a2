"""Two products from one DSP multiply: ``w*a1`` and ``w*a2`` out of one 18x18 ``MULT18X18D`` (the spec).

Why: weights are broadcast, so two neighbouring PEs multiply the *same* weight ``w`` by different
activations ``a1``, ``a2``. Packing both activations into one operand, ``A = a2*2**K + a1``, makes one
multiply compute both products side by side: ``w*A = w*a2*2**K + w*a1`` (Langhammer et al., "Extracting
INT8 multipliers from INT18 multipliers", FPL 2019). The ECP5's port is :data:`PORT` = 18 bits signed, so
with 8-bit activations the upper field starts at ``K = 18 - 8 = 10``; but a signed 8x8 product has
16 bits, so the two products *overlap* by ``m = 16 - 10 = 6`` bits and plain bit-slicing cannot separate
them. The overlap is undone with a small soft correction (this module's arithmetic; ``hdl.packed_multiplier``
builds exactly it, ``tests/golden/test_dsp_packing.py`` proves it over all 2**24 int8 triples).

Derivation (``n = act_bits + weight_bits`` product width, ``s = [a1 < 0]``, ``m = n - K``):

* the operand is a bit concatenation, ``A = {a2, a1 sign-extended to K bits}`` (no adder in front of the
  DSP), which is ``a2*2**K + (a1 mod 2**K) = (a2 + s)*2**K + a1``; so ``P = w*A = w*a1 + (w*a2 + s*w)*2**K``;
* soft logic computes ``E = (w*a2) mod 2**m`` from the low ``m`` bits of ``w`` and ``a2`` only (an ``m x m``
  truncated product: 6x6 for int8, far smaller than a soft 8x8 multiplier) and the offset
  ``T = 2**(m-1) - s*w - E``;
* ``Q = P + T*2**K = (w*a1 + 2**(n-1)) + ((w*a2 - E) / 2**m) * 2**n``: the ``s*w`` cross term is gone, the
  overlap is cleared (``w*a2 - E`` is a multiple of ``2**m``), and the bias ``2**(n-1)`` makes the low
  field non-negative, so nothing borrows across the boundary at bit ``n``;
* hence ``w*a1 = Q[n-1:0] - 2**(n-1)`` (flip its top bit) and ``w*a2 = Q[K+n-1:n]*2**m + E`` (mod ``2**n``).

The hardware after the DSP is one ``n``-bit adder, ``P[K+n-1:K] + T`` (``T`` is computed while the DSP
multiplies). Widths with ``2*act_bits + weight_bits <= port`` have no overlap (``m <= 0``): only the sign
correction ``p2 = P[K+n-1:K] - s*w + P[n-1]`` is needed (:func:`fits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

PORT = 18
"""Operand width of the ECP5 ``MULT18X18D`` (signed); the packed activations go to one port, ``w`` to the other."""

ACT_BITS = 8
"""The activation width the packing is built for by default (int8)."""

WEIGHT_BITS = 8
"""The weight width the packing is built for by default (int8)."""

K = PORT - ACT_BITS
"""Field offset of ``a2`` in the packed operand: 10 for int8 activations on the 18-bit port (as high as the
port allows, which keeps the overlap of the two products as small as possible)."""

OVERLAP = ACT_BITS + WEIGHT_BITS - K
"""Bits by which the two 16-bit products overlap in the 36-bit product for int8 (6): the width of the soft
truncated product."""


@dataclass(frozen=True)
class Plan:
    """How two ``act_bits`` x ``weight_bits`` products share one ``port``-bit multiply (see :func:`fits`)."""

    act_bits: int
    weight_bits: int
    port: int
    k: int
    """Offset of ``a2``'s field in the packed operand (``port - act_bits``)."""
    overlap: int
    """``2*act_bits + weight_bits - port``: bits the two products overlap; ``<= 0`` needs no soft product."""

    @property
    def product_bits(self) -> int:
        """Width of each signed product (``act_bits + weight_bits``)."""
        return self.act_bits + self.weight_bits

    @property
    def soft(self) -> bool:
        """Whether the overlap must be removed with the soft ``overlap x overlap`` truncated product."""
        return self.overlap > 0

    @property
    def correction(self) -> str:
        """``"sign"`` (sign correction only) or ``"soft"`` (sign correction plus the soft truncated product)."""
        return "soft" if self.soft else "sign"


def fits(act_bits: int, weight_bits: int, port: int = PORT, *, what: str = "dsp packing",
         fix: str = "use two multipliers") -> Plan:
    """How two products ``w*a1``, ``w*a2`` (``weight_bits``-bit ``w``, ``act_bits``-bit activations) pack into
    one ``port x port`` signed multiply, or ``ValueError`` (one line, starting ``what:``, advising ``fix``
    where the widths are the problem: a caller names its own option) when this scheme cannot do it.

    * ``2*act_bits + weight_bits <= port``: the products do not overlap, **sign correction only**;
    * otherwise they overlap by ``m = 2*act_bits + weight_bits - port`` bits, removed by a **soft
      correction** (an ``m x m`` truncated product). It is worth it only while the overlap is narrower than
      both operands (``m < min(act_bits, weight_bits)``); at ``m = min(...)`` the correction is as wide as a
      soft multiplier's low half and a second DSP is the better deal, so that is refused. On the 18-bit port
      this rules out ``act_bits > 8`` (``K = 18 - 9 = 9``: the overlap is all ``weight_bits`` bits).
    """
    for name, value in (("act_bits", act_bits), ("weight_bits", weight_bits), ("port", port)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ValueError(f"{what}: {name} must be an integer >= 2, not {value!r}")
    act_bits, weight_bits, port = int(act_bits), int(weight_bits), int(port)
    if weight_bits > port:
        raise ValueError(f"{what}: a {weight_bits}-bit weight does not fit the {port}-bit multiplier port")
    k = port - act_bits
    overlap = 2 * act_bits + weight_bits - port
    if k < act_bits or overlap >= min(act_bits, weight_bits):
        widest = max((a for a in range(2, port // 2 + 1) if 2 * a + weight_bits - port < min(a, weight_bits)),
                     default=None)
        hint = (f"at most {widest}-bit activations pack with {weight_bits}-bit weights" if widest
                else f"no activation width packs with {weight_bits}-bit weights")
        why = (f"two {act_bits}-bit activations do not fit one {port}-bit port" if k < act_bits else
               f"the products overlap by {overlap} bits, as wide as an operand")
        raise ValueError(f"{what}: {act_bits}-bit activations x {weight_bits}-bit weights on a {port}-bit "
                         f"multiplier: {why}; {fix} ({hint})")
    return Plan(act_bits, weight_bits, port, k, overlap)


class Correction(NamedTuple):
    """What the soft logic computes while the DSP multiplies (arrays like the operands)."""

    offset: np.ndarray
    """``T``, added to the product at bit ``K``: ``2**(m-1) - s*w - low`` (soft) or ``-s*w`` (sign only)."""
    low: np.ndarray
    """``(w*a2) mod 2**m`` from the low ``m`` bits of ``w`` and ``a2`` (0 without overlap): ``w*a2``'s low bits."""


def _sext(x: np.ndarray, bits: int) -> np.ndarray:
    """``x``'s low ``bits`` bits as a two's complement number."""
    x = x & ((1 << bits) - 1)
    return x - ((x >> (bits - 1)) << bits)


def _ints(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _check_range(name: str, x: np.ndarray, bits: int) -> None:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        bad = x[(x < lo) | (x > hi)].flat[0]
        raise ValueError(f"dsp packing: {name} = {bad} is not a signed {bits}-bit value ({lo}..{hi})")


def pack(a1, a2, k: int = K) -> np.ndarray:
    """The packed operand the DSP port sees: ``{a2, a1 sign-extended to k bits}`` read as a signed number,
    ``a2*2**k + (a1 mod 2**k)``. A concatenation, so no adder sits in front of the DSP; its value is
    ``(a2 + [a1 < 0])*2**k + a1``, whose extra ``[a1 < 0]*w*2**k`` the correction removes."""
    a1, a2 = _ints(a1), _ints(a2)
    return a2 * (1 << k) + (a1 & ((1 << k) - 1))


def truncated_product(w, a, bits: int) -> np.ndarray:
    """``(w*a) mod 2**bits`` from the low ``bits`` bits of each operand, as the shift-and-add the hardware
    builds: partial product ``i`` is ``w``'s low ``bits - i`` bits where ``a``'s bit ``i`` is set, shifted by
    ``i``; bits at or above ``bits`` are never formed (a low-half multiply needs only the operands' low bits)."""
    w, a = _ints(w), _ints(a)
    mask = (1 << bits) - 1
    acc = np.zeros(np.broadcast(w, a).shape, dtype=np.int64)
    for i in range(bits):
        acc = (acc + ((((a >> i) & 1) * (w & ((1 << (bits - i)) - 1))) << i)) & mask
    return acc


def correction(w, a1, a2, act_bits: int = ACT_BITS, weight_bits: int = WEIGHT_BITS,
               port: int = PORT) -> Correction:
    """The soft correction for one packed multiply, from the operands' low bits and ``a1``'s sign only
    (what the hardware computes in parallel with the DSP; see the module docstring)."""
    plan = fits(act_bits, weight_bits, port)
    w, a1, a2 = _ints(w), _ints(a1), _ints(a2)
    sw = np.where(a1 < 0, w, 0)  # s*w: the cross term of pack()'s concatenation
    if not plan.soft:
        return Correction(-sw, np.zeros_like(sw))
    m = plan.overlap
    low = truncated_product(w, a2, m)
    return Correction((1 << (m - 1)) - sw - low, low)


def unpack(p, corr: Correction, act_bits: int = ACT_BITS, weight_bits: int = WEIGHT_BITS,
           port: int = PORT) -> tuple[np.ndarray, np.ndarray]:
    """``(w*a1, w*a2)`` from the DSP's product ``p`` and the :func:`correction`, bit for bit as the gateware:
    one ``n``-bit sum ``S = p[k+n-1:k] + T``, then slices of ``S``, ``p`` and ``low``."""
    plan = fits(act_bits, weight_bits, port)
    p = _ints(p)
    n, k, m = plan.product_bits, plan.k, plan.overlap
    field = (p >> k) & ((1 << n) - 1)  # p[k+n-1:k]
    if not plan.soft:
        # the low product sign-extends into the upper field: its sign bit p[n-1] is the borrow to undo
        s = (field + corr.offset + ((p >> (n - 1)) & 1)) & ((1 << n) - 1)
        return _sext(p, n), _sext(s, n)
    s = (field + corr.offset) & ((1 << n) - 1)
    biased = (p & ((1 << k) - 1)) | ((s & ((1 << m) - 1)) << k)  # w*a1 + 2**(n-1), never negative
    p1 = biased - (1 << (n - 1))
    p2 = _sext(((s >> m) << m) | corr.low, n)
    return p1, p2


def packed_products(w, a1, a2, bits: int = ACT_BITS, weight_bits: int | None = None,
                    port: int = PORT) -> tuple[np.ndarray, np.ndarray]:
    """``(w*a1, w*a2)`` exactly as the packed hardware computes them (one ``port x port`` multiply of
    :func:`pack`'s operand by ``w``, then :func:`correction` and :func:`unpack`), vectorized over arrays.

    ``bits`` is the activations' width, ``weight_bits`` the weight's (default: ``bits``); operands outside
    their signed range raise ``ValueError``."""
    weight_bits = bits if weight_bits is None else weight_bits
    plan = fits(bits, weight_bits, port)
    w, a1, a2 = _ints(w), _ints(a1), _ints(a2)
    _check_range("w", w, weight_bits)
    _check_range("a1", a1, bits)
    _check_range("a2", a2, bits)
    operand = pack(a1, a2, plan.k)
    _check_range("packed operand", operand, port)  # by construction; the port is signed port bits
    p = operand * w  # the DSP: exact, port x port -> 2*port bits (int64 holds it)
    return unpack(p, correction(w, a1, a2, bits, weight_bits, port), bits, weight_bits, port)
