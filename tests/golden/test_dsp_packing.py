"""golden.dsp_packing: two int8 products from one 18x18 multiply, proved exact over every (w, a1, a2) triple.

The proof is exhaustive (2**24 int8 triples, vectorized 16 weights at a time: ~1-2 s), because the
scheme's corner cases (the overlap's carries, a1 < 0's cross term, -128 x -128 = +2**14) are exactly
where a sampled test would miss one. Other widths the rule accepts are exhaustive too where small.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden import dsp_packing as dp


def _grid(act_bits: int, weight_bits: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (w, a1, a2) with w in ``weights`` and any signed ``act_bits``-bit activations."""
    acts = np.arange(-(1 << (act_bits - 1)), 1 << (act_bits - 1), dtype=np.int64)
    w, a1, a2 = np.meshgrid(weights.astype(np.int64), acts, acts, indexing="ij")
    return w.ravel(), a1.ravel(), a2.ravel()


def _mismatches(act_bits: int, weight_bits: int, chunk: int = 16) -> tuple[int, int]:
    """(triples checked, triples whose packed products differ from w*a1, w*a2) over all triples."""
    weights = np.arange(-(1 << (weight_bits - 1)), 1 << (weight_bits - 1), dtype=np.int64)
    checked = bad = 0
    for start in range(0, weights.size, chunk):
        w, a1, a2 = _grid(act_bits, weight_bits, weights[start:start + chunk])
        p1, p2 = dp.packed_products(w, a1, a2, act_bits, weight_bits)
        bad += int(np.count_nonzero((p1 != w * a1) | (p2 != w * a2)))
        checked += w.size
    return checked, bad


def test_int8_packing_is_exact_for_all_2_pow_24_triples():
    checked, bad = _mismatches(8, 8)
    assert checked == 1 << 24
    assert bad == 0


@pytest.mark.parametrize("act_bits,weight_bits", [(7, 8), (6, 8), (5, 8), (7, 9), (6, 10), (8, 2), (4, 4)])
def test_other_accepted_widths_are_exact(act_bits, weight_bits):
    """Soft correction (overlap 4, 2, 5, 4), sign only (overlap 0 and -6): every triple."""
    checked, bad = _mismatches(act_bits, weight_bits)
    assert checked == 1 << (2 * act_bits + weight_bits)
    assert bad == 0


def test_the_constants_are_the_int8_plan():
    plan = dp.fits(8, 8)
    assert (dp.PORT, dp.K, dp.OVERLAP) == (18, 10, 6)
    assert (plan.k, plan.overlap, plan.product_bits, plan.correction) == (dp.K, dp.OVERLAP, 16, "soft")


def test_the_packed_operand_is_a_concatenation_that_fits_the_port():
    a = np.arange(-128, 128)
    a1, a2 = np.meshgrid(a, a)
    packed = dp.pack(a1, a2)
    assert packed.min() >= -(1 << 17) and packed.max() < 1 << 17
    assert np.array_equal(packed & 0x3FF, a1 & 0x3FF)  # a1 sign-extended to K bits
    assert np.array_equal(packed >> dp.K, a2)
    assert np.array_equal(packed, (a2 + (a1 < 0)) * (1 << dp.K) + a1)  # the cross term the correction removes
    assert int(dp.pack(-1, -128)) == -(1 << 17) + (1 << 10) - 1


def test_the_correction_needs_only_the_low_bits_and_a1s_sign():
    """Changing w's or a2's bits above the overlap, or a1 other than its sign, leaves ``low`` unchanged and
    moves the offset only by the s*w term: the soft logic reads 6+6 bits, a1[7] and w."""
    rng = np.random.default_rng(1)
    w, a1, a2 = (rng.integers(-128, 128, 4096) for _ in range(3))
    corr = dp.correction(w, a1, a2)
    assert np.array_equal(corr.low, (w * a2) % 64)
    assert np.array_equal(corr.offset, 32 - np.where(a1 < 0, w, 0) - corr.low)
    a2_high = (a2 & 0x3F) - 64 * rng.integers(0, 2, a2.size)  # same low 6 bits, other high bits
    assert np.array_equal(dp.correction(w, a1, a2_high).low, corr.low)
    assert np.array_equal(dp.truncated_product(w, a2, 6), (w * a2) & 0x3F)


def test_unpack_inverts_the_dsp_product():
    w, a1, a2 = np.array([-128, -128, 127, -1, 0]), np.array([-128, 127, -128, -1, 5]), np.array([-128, -1, 127, 1, 9])
    p = dp.pack(a1, a2) * w
    p1, p2 = dp.unpack(p, dp.correction(w, a1, a2))
    assert p1.tolist() == (w * a1).tolist() and p2.tolist() == (w * a2).tolist()


@pytest.mark.parametrize("act_bits,weight_bits,plan", [
    (8, 8, (10, 6, "soft")),
    (8, 9, (10, 7, "soft")),
    (7, 8, (11, 4, "soft")),
    (5, 8, (13, 0, "sign")),   # 2*5 + 8 = 18: no overlap
    (4, 10, (14, 0, "sign")),
    (3, 4, (15, -8, "sign")),
])
def test_fits_tells_sign_only_from_soft_correction(act_bits, weight_bits, plan):
    got = dp.fits(act_bits, weight_bits)
    assert (got.k, got.overlap, got.correction) == plan
    assert got.soft == (2 * act_bits + weight_bits > dp.PORT)


@pytest.mark.parametrize("args,message", [
    ((9, 8), "dsp packing: 9-bit activations x 8-bit weights on a 18-bit multiplier: the products overlap by 8 bits, "
             "as wide as an operand; use two multipliers (at most 8-bit activations pack with 8-bit weights)"),
    ((10, 2), "dsp packing: 10-bit activations x 2-bit weights on a 18-bit multiplier: two 10-bit activations do not "
              "fit one 18-bit port; use two multipliers (at most 8-bit activations pack with 2-bit weights)"),
    ((8, 10), "dsp packing: 8-bit activations x 10-bit weights on a 18-bit multiplier: the products overlap by 8 "
              "bits, as wide as an operand; use two multipliers (at most 7-bit activations pack with 10-bit weights)"),
    ((4, 19), "dsp packing: a 19-bit weight does not fit the 18-bit multiplier port"),
    ((1, 8), "dsp packing: act_bits must be an integer >= 2, not 1"),
    ((8, 8.0), "dsp packing: weight_bits must be an integer >= 2, not 8.0"),
])
def test_widths_the_scheme_cannot_do_are_one_clear_line(args, message):
    with pytest.raises(ValueError) as e:
        dp.fits(*args)
    assert str(e.value) == message and "\n" not in message


def test_act_bits_above_8_never_pack_on_the_18_bit_port():
    for weight_bits in range(2, 19):
        with pytest.raises(ValueError, match="use two multipliers"):
            dp.fits(9, weight_bits)


def test_out_of_range_operands_are_refused():
    with pytest.raises(ValueError, match=r"^dsp packing: a1 = 128 is not a signed 8-bit value \(-128\.\.127\)$"):
        dp.packed_products(1, 128, 0)
    with pytest.raises(ValueError, match="w = -9 is not a signed 4-bit value"):
        dp.packed_products(np.array([3, -9]), 0, 0, bits=4)
    with pytest.raises(ValueError, match="use two multipliers"):
        dp.packed_products(1, 1, 1, bits=9)
