"""Index memories built from whole block RAMs (``hdl.buffers.BlockBanks``) stream like one memory.

Up to a block's deepest mode they are bit slices read straight into the landing register; deeper, banks
whose words ``hdl.prefetch.read_ahead`` lands together and picks after the landing register. A stream
(across bank boundaries and the shorter last bank, where there are banks) must give the same words, in
the same cycles, as a single memory would.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, Signal
from amaranth.sim import Simulator

from golden.timing import STREAM_LATENCY
from hdl.buffers import BlockBanks, block_depth
from hdl.prefetch import read_ahead


def test_block_depth_is_the_deepest_mode_the_width_fits():
    assert [block_depth(w) for w in (1, 4, 5, 9, 18, 27, 36, 40)] == [16384, 4096, 2048, 2048, 1024, 512, 512, 512]


def test_a_memory_one_block_deep_is_bit_slices_with_nothing_to_pick():
    m = Module()
    mem = BlockBanks(m, "chan", 27, 4096)  # the 8x8 array's channel index: 4K x 4 blocks
    assert sorted(m._named_submodules) == [f"chan_s{k}" for k in range(7)]
    data, addr = Signal(27), Signal(12)
    assert mem.pick(data, addr) is data
    Fragment.get(m, None)  # the module is used (elaborated), so Amaranth does not warn about it


@pytest.mark.parametrize("width,depth,start", [(27, 1300, 500), (5, 2100, 2040), (27, 400, 3), (27, 530, 500),
                                               (1, 16400, 16370)])
def test_a_stream_across_banks_reads_every_word_in_order(width, depth, start):
    m = Module()
    mem = BlockBanks(m, "mem", width, depth)
    wp = mem.write_port()
    restart, pop = Signal(), Signal()
    ahead = read_ahead(m, mem, restart=restart, start=start, pop=pop, name="s", pick=mem.pick)
    words = np.random.default_rng(width).integers(0, 1 << width, depth).tolist()
    want = words[start:start + 40]
    got = []
    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for addr, word in enumerate(words):
            ctx.set(wp.addr, addr)
            ctx.set(wp.data, word)
            ctx.set(wp.en, 1)
            await ctx.tick()
        ctx.set(wp.en, 0)
        ctx.set(restart, 1)
        await ctx.tick()
        ctx.set(restart, 0)
        for _ in range(STREAM_LATENCY - 1):
            await ctx.tick()
        for k in range(len(want)):
            assert ctx.get(ahead.valid)
            got.append(ctx.get(ahead.head))
            ctx.set(pop, k % 3 != 2)  # pop two of three cycles: words wait in the queue too
            await ctx.tick()
            if k % 3 == 2:
                ctx.set(pop, 1)
                assert ctx.get(ahead.head) == got[-1]
                await ctx.tick()
            ctx.set(pop, 0)

    sim.add_testbench(bench)
    sim.run()
    assert got == want
