"""The int8 epilogue's arithmetic (``golden.epilogue``): ReLU, requantization rounding half up, saturation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from golden.epilogue import epilogue, requant_params


def _one(y: int, mult: int, shift: int, relu: bool = False, act_bits: int = 8) -> int:
    return int(epilogue(np.array([[[y]]]), np.array([mult]), np.array([shift]), relu=relu, act_bits=act_bits)[0, 0, 0])


@pytest.mark.parametrize("y,mult,shift,want", [
    (5, 1, 1, 3), (-5, 1, 1, -2), (3, 1, 1, 2), (-3, 1, 1, -1),  # ties round half up (towards +inf)
    (7, 3, 2, 5), (-7, 3, 2, -5),  # 5.25 -> 5, -5.25 -> -5
    (100, 1, 0, 100), (1000, 1, 0, 127), (-1000, 1, 0, -128),  # saturation both ways
    (-(2 ** 31), 65535, 0, -128), (2 ** 31 - 1, 65535, 0, 127),  # accumulator extremes, full multiplier
    (12345, 0, 7, 0), (-12345, 0, 0, 0),  # a zero multiplier gives 0
    (1, 1, 63, 0), (2 ** 62, 1, 63, 1),  # 0.5**63 -> 0; exactly one half -> rounds up to 1
])
def test_rounding_and_saturation(y, mult, shift, want):
    assert _one(y, mult, shift) == want


def test_relu_comes_before_requantization():
    assert _one(-100, 3, 1, relu=True) == 0
    assert _one(-100, 3, 1, relu=False) == -128
    assert _one(100, 3, 1, relu=True) == 127


def test_random_values_equal_the_exact_rational_rounding():
    rng = np.random.default_rng(3)
    acc = rng.integers(-(2 ** 31), 2 ** 31, (4, 5, 6))
    mult = rng.integers(0, 2 ** 16, 4)
    shift = rng.integers(0, 40, 4)
    got = epilogue(acc, mult, shift, relu=False, act_bits=8)
    for (m, y, x), v in np.ndenumerate(acc):
        exact = math.floor(Fraction(int(v) * int(mult[m]), 2 ** int(shift[m])) + Fraction(1, 2))
        assert got[m, y, x] == min(127, max(-128, exact))


@pytest.mark.parametrize("act_bits", [4, 8, 16])
def test_saturation_follows_act_bits(act_bits):
    assert _one(10 ** 9, 1, 0, act_bits=act_bits) == 2 ** (act_bits - 1) - 1
    assert _one(-(10 ** 9), 1, 0, act_bits=act_bits) == -(2 ** (act_bits - 1))


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.123456, 3.7e-4, 1e-9, 255.9])
def test_requant_params_approximate_the_scale_at_full_precision(scale):
    mult, shift = requant_params(scale, mult_bits=16)
    assert 2 ** 15 <= mult < 2 ** 16
    assert abs(mult / 2 ** shift - scale) <= scale * 2 ** -15


def test_requant_params_edge_cases():
    assert requant_params(0.0) == (0, 0)
    mult, shift = requant_params(1e-30, shift_max=63)  # below the shift range: a smaller multiplier
    assert shift == 63 and mult < 2 ** 15
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
            requant_params(bad)
    with pytest.raises(ValueError, match="wider than 16 bits"):
        requant_params(2.0 ** 20)


@pytest.mark.parametrize("kw,message", [
    (dict(mult=np.array([1, 2])), r"mult must have one value per output channel \(1\)"),
    (dict(mult=np.array([1.5])), "mult must be integers"),
    (dict(mult=np.array([2 ** 16])), r"mult values must be in \[0, 65535\]"),
    (dict(shift=np.array([-1])), r"shift values must be in \[0, 63\]"),
    (dict(acc=np.zeros((2, 2))), "acc must be a 3-D integer array"),
])
def test_bad_arguments_name_the_problem(kw, message):
    args = dict(acc=np.zeros((1, 2, 2), np.int64), mult=np.array([1]), shift=np.array([0]))
    args.update(kw)
    with pytest.raises(ValueError, match=message):
        epilogue(args["acc"], args["mult"], args["shift"], relu=False)
