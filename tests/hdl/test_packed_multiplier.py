"""hdl.packed_multiplier against golden.dsp_packing: two int8 products per DSP multiply, exact, on time.

Two simulators: Amaranth's (corner values, latency, other widths; fast) and a Verilated model of the
generated Verilog driven by a small C++ loop that streams every one of the 2**24 (w, a1, a2) int8 triples,
one per cycle, and compares with the products it computes itself (~7 s to build, under 1 s to run).
"""

from __future__ import annotations

import gc
import itertools
import re
import subprocess
import warnings

import numpy as np
import pytest
from amaranth.back import rtlil, verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from golden import dsp_packing
from golden.timing import MULTIPLIER_LATENCY
from hdl.packed_multiplier import PackedMultiplier
from tests.support import needs_verilator

CORNERS = (-128, -127, -1, 0, 1, 127)


class _Platform:
    """Stands in for a board's platform where elaboration depends on the FPGA family."""

    family = "ecp5"




def _stream(dut: PackedMultiplier, triples: list[tuple[int, int, int]], idle: int = 0) -> list[tuple[int, int]]:
    """Present one triple per cycle (then zeros for ``MULTIPLIER_LATENCY + idle`` cycles); ``(p1, p2)`` seen in
    each cycle from the one after the first triple's on."""
    seen = []

    async def bench(ctx):
        for i in range(len(triples) + MULTIPLIER_LATENCY + idle):
            w, a1, a2 = triples[i] if i < len(triples) else (0, 0, 0)
            ctx.set(dut.w, w)
            ctx.set(dut.a1, a1)
            ctx.set(dut.a2, a2)
            await ctx.tick()
            seen.append((ctx.get(dut.p1), ctx.get(dut.p2)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


def _expected(triples, act_bits: int, weight_bits: int) -> list[tuple[int, int]]:
    w, a1, a2 = (np.array(x, dtype=np.int64) for x in zip(*triples, strict=True))
    p1, p2 = dsp_packing.packed_products(w, a1, a2, act_bits, weight_bits)
    assert np.array_equal(p1, w * a1) and np.array_equal(p2, w * a2)
    return list(zip(p1.tolist(), p2.tolist(), strict=True))


def _random(rng, n: int, act_bits: int, weight_bits: int) -> list[tuple[int, int, int]]:
    wm, am = 1 << (weight_bits - 1), 1 << (act_bits - 1)
    return [(int(rng.integers(-wm, wm)), int(rng.integers(-am, am)), int(rng.integers(-am, am))) for _ in range(n)]


def test_corners_and_random_back_to_back_exactly_multiplier_latency_later():
    """Every triple of corner values (-128, -127, -1, 0, 1, 127) and 2000 random ones, one per cycle: the
    products of cycle ``t``'s operands are on ``p1``/``p2`` in cycle ``t + MULTIPLIER_LATENCY``, none early."""
    triples = list(itertools.product(CORNERS, repeat=3)) + _random(np.random.default_rng(0), 2000, 8, 8)
    seen = _stream(PackedMultiplier(), triples)
    # seen[i] is cycle i+1: the operands of cycle i+1-MULTIPLIER_LATENCY
    assert seen[MULTIPLIER_LATENCY - 1:MULTIPLIER_LATENCY - 1 + len(triples)] == _expected(triples, 8, 8)


def test_one_operand_set_appears_after_exactly_the_multiplier_latency():
    dut = PackedMultiplier()
    seen = _stream(dut, [(-128, -128, 127)], idle=2)
    assert seen[MULTIPLIER_LATENCY - 2] == (0, 0)  # the cycle before: the previous (zero) operands' products
    assert seen[MULTIPLIER_LATENCY - 1] == (16384, -16256)
    assert seen[MULTIPLIER_LATENCY] == (0, 0)


@pytest.mark.parametrize("act_bits,weight_bits", [(7, 8), (8, 9), (5, 8), (4, 4)])
def test_other_widths_the_packing_accepts(act_bits, weight_bits):
    """Soft correction (overlap 4, 7) and sign correction only (0, -6): corners and random operands."""
    wm, am = 1 << (weight_bits - 1), 1 << (act_bits - 1)
    ends = lambda m: (-m, -m + 1, -1, 0, 1, m - 1)  # noqa: E731
    triples = [(w, a1, a2) for w in ends(wm) for a1 in ends(am) for a2 in ends(am)]
    triples += _random(np.random.default_rng(act_bits * weight_bits), 500, act_bits, weight_bits)
    dut = PackedMultiplier(act_bits, weight_bits)
    assert (len(dut.p1), len(dut.p2)) == (act_bits + weight_bits,) * 2
    seen = _stream(dut, triples)
    assert seen[MULTIPLIER_LATENCY - 1:MULTIPLIER_LATENCY - 1 + len(triples)] == _expected(triples, act_bits,
                                                                                           weight_bits)


def test_widths_that_do_not_pack_are_refused_with_golden_s_message():
    with warnings.catch_warnings():
        # the half-built component is never used: that is the point
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match=r"^dsp packing: 9-bit activations x 8-bit weights .*use two multipliers"):
            PackedMultiplier(9, 8)
        gc.collect()


def _cells(dut, platform=None) -> list[str]:
    return re.findall(r"^\s*cell (\S+)", rtlil.convert(dut, platform=platform), re.MULTILINE)


def test_one_multiply_the_correction_is_soft_logic():
    """One ``$mul`` (the DSP's) in the generic design; on the ECP5 one ``MULT18X18D`` and no ``$mul`` at all,
    so Yosys cannot map the soft truncated product to a second DSP."""
    assert _cells(PackedMultiplier()).count("$mul") == 1
    ecp5 = _cells(PackedMultiplier(), _Platform())
    assert ecp5.count("\\MULT18X18D") == 1 and "$mul" not in ecp5


MAIN_CPP = r"""
#include "Vtop.h"
#include "verilated.h"
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// Vtop LATENCY all              every (w, a1, a2) int8 triple, w from bits 23..16, a1 15..8, a2 7..0
// Vtop LATENCY random COUNT SEED COUNT triples from splitmix64(SEED)
// One triple per cycle; the outputs after the edge of cycle c are compared with the products of the
// operands of cycle c+1-LATENCY. Prints "checked N mismatches M seconds S"; exit status 1 on a mismatch.
struct Triple { int w, a1, a2; };

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    const int latency = std::atoi(argv[1]);
    const bool all = std::string(argv[2]) == "all";
    const uint64_t count = all ? (1ull << 24) : std::strtoull(argv[3], nullptr, 10);
    uint64_t state = all ? 0 : std::strtoull(argv[4], nullptr, 10);
    auto next = [&]() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    VerilatedContext ctx;
    Vtop top(&ctx);
    std::vector<Triple> ring(latency + 1);
    uint64_t mismatches = 0;
    const auto t0 = std::chrono::steady_clock::now();
    top.clk = 0;
    top.rst = 0;
    top.eval();
    for (uint64_t c = 0; c < count + latency; ++c) {
        Triple t{0, 0, 0};
        if (c < count) {
            const uint32_t bits = all ? uint32_t(c) : uint32_t(next());
            t = {int8_t(bits >> 16), int8_t(bits >> 8), int8_t(bits)};
        }
        ring[c % (latency + 1)] = t;
        top.w = uint8_t(t.w);
        top.a1 = uint8_t(t.a1);
        top.a2 = uint8_t(t.a2);
        top.clk = 1;
        top.eval();
        top.clk = 0;
        top.eval();
        if (c + 1 >= uint64_t(latency) && c + 1 - latency < count) {
            const Triple& e = ring[(c + 1 - latency) % (latency + 1)];
            const int p1 = int16_t(top.p1), p2 = int16_t(top.p2);
            if (p1 != e.w * e.a1 || p2 != e.w * e.a2) {
                if (mismatches++ < 10)
                    std::printf("mismatch w=%d a1=%d a2=%d: p1=%d p2=%d\n", e.w, e.a1, e.a2, p1, p2);
            }
        }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("checked %llu mismatches %llu seconds %.3f\n", (unsigned long long)count,
                (unsigned long long)mismatches, s);
    top.final();
    return mismatches ? 1 : 0;
}
"""


@pytest.fixture(scope="module")
def verilated(tmp_path_factory):
    """The Verilated int8 PackedMultiplier (generic Verilog: plain registers around ``*``) with MAIN_CPP."""
    from sim.verilator import MODEL_ARGS, ensure_verilator

    binary = ensure_verilator()
    directory = tmp_path_factory.mktemp("packed_multiplier")
    (directory / "top.v").write_text(verilog.convert(PackedMultiplier(), name="top"))
    (directory / "main.cpp").write_text(MAIN_CPP)
    cmd = [str(binary), "--cc", "--exe", "--build", "-j", "2", *MODEL_ARGS, "--top-module", "top", "-Mdir", "obj",
           "-o", "Vtop", "top.v", "main.cpp"]
    proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return directory / "obj" / "Vtop"


def _run(model, *args) -> tuple[int, str]:
    proc = subprocess.run([str(model), *map(str, args)], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout


@needs_verilator
def test_exhaustive_all_2_pow_24_triples_on_the_verilated_model(verilated):
    code, out = _run(verilated, MULTIPLIER_LATENCY, "all")
    assert code == 0 and f"checked {1 << 24} mismatches 0 " in out, out


@needs_verilator
def test_the_verilated_check_sees_a_wrong_latency(verilated):
    """The harness is not vacuous: expecting the products a cycle early or late, it finds mismatches."""
    code, out = _run(verilated, MULTIPLIER_LATENCY, "random", 1 << 18, 7)
    assert code == 0 and f"checked {1 << 18} mismatches 0 " in out, out
    for latency in (MULTIPLIER_LATENCY - 1, MULTIPLIER_LATENCY + 1):
        code, out = _run(verilated, latency, "random", 4096, 7)
        assert code == 1 and "mismatch w=" in out, out
