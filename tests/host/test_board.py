"""UART, clock planning and the host bridge + array together in Amaranth's simulator (fast, no FPGA tools)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

import golden.protocol as protocol
import host.board as board_cli
from golden.config import ArrayConfig
from golden.conv import conv2d
from golden.encode import encode
from golden.layerio import save_layer
from golden.passes import fit_or_plan
from golden.protocol import BridgeError, Op, Protocol, Transaction, decode_status, info_reply, layer_session
from golden.timing import simulate
from hdl.boards import BoardSpec, board_names
from hdl.clocking import ecp5_pll, ice40_pll, plan_clock
from hdl.generate import manifest
from hdl.uart import UARTReceiver, UARTTransmitter, baud_divisor
from host.link import simulate_session
from tests.support import random_layer

TINY = dict(rows=2, cols=2, acc_depth=4, act_depth=256, weight_depth=512, index_depth=64, out_depth=256,
            epilogue=0)  # the output stage is tests/test_output_stage.py's subject


# --- UART ---

def test_baud_divisor_rounds_and_validates():
    assert baud_divisor(12e6, 115200) == 104
    with pytest.raises(ValueError, match=r"needs at least 4 clock cycles per bit .* at most 3000000"):
        baud_divisor(12e6, 4_000_000)
    with pytest.raises(ValueError, match=r"baud rate 2200000 is 9\.1% off at 12 MHz \(divisor 5\)"):
        baud_divisor(12e6, 2_200_000)
    with pytest.raises(ValueError, match=r"baud rate must be a positive integer, not 0"):
        baud_divisor(12e6, 0)


@pytest.mark.parametrize("divisor", [4, 7])
def test_uart_loopback(divisor):
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(clk_freq=divisor * 1e6, baud=1_000_000)
    m.submodules.rx = rx = UARTReceiver(clk_freq=divisor * 1e6, baud=1_000_000)
    m.d.comb += rx.rx.eq(tx.tx)
    data = [0x00, 0xFF, 0x55, 0xA3, 0x01, 0x80]
    got = []

    async def producer(ctx):
        for byte in data:  # back to back: the transmitter's ready paces it
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def consumer(ctx):
        ctx.set(rx.o.ready, 1)
        while len(got) < len(data):
            _, _, payload, valid, overrun, frame = await ctx.tick().sample(
                rx.o.payload, rx.o.valid, rx.overrun, rx.frame_error)
            assert not overrun and not frame
            if valid:
                got.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-6 / divisor)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-6 * 12 * (len(data) + 2))
    assert got == data


def test_uart_receiver_flags_frame_error_and_overrun():
    rx = UARTReceiver(clk_freq=4e6, baud=1_000_000)
    flags = {"frame": 0, "overrun": 0, "bytes": []}

    async def line(ctx):
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(8)
        for byte, stop in ((0x3C, 0), (0x11, 1), (0x22, 1)):  # bad stop bit, then two unread bytes
            for level in (0, *((byte >> i) & 1 for i in range(8)), stop):
                ctx.set(rx.rx, level)
                await ctx.tick().repeat(4)
            ctx.set(rx.rx, 1)
            await ctx.tick().repeat(8)

    async def watch(ctx):  # never ready: the second good byte overruns the first
        for _ in range(150):
            _, _, frame, overrun, valid, payload = await ctx.tick().sample(
                rx.frame_error, rx.overrun, rx.o.valid, rx.o.payload)
            flags["frame"] += frame
            flags["overrun"] += overrun
            if valid and payload not in flags["bytes"]:
                flags["bytes"].append(payload)

    sim = Simulator(rx)
    sim.add_clock(2.5e-7)
    sim.add_testbench(line)
    sim.add_testbench(watch)
    sim.run()
    assert flags == {"frame": 1, "overrun": 1, "bytes": [0x11]}


# --- clocks ---

def test_pll_settings_match_icepll_and_ecppll():
    # reference values printed by yowasp-icepll -i 12 -o 40 / -o 30 and yowasp-ecppll -i 25 -o 100 / -o 62.5
    assert ice40_pll(12e6, 40e6) == (dict(DIVR=0, DIVF=52, DIVQ=4, FILTER_RANGE=1), 39.75e6)
    assert ice40_pll(12e6, 30e6) == (dict(DIVR=0, DIVF=79, DIVQ=5, FILTER_RANGE=1), 30e6)
    params, f = ecp5_pll(25e6, 100e6)
    assert (params["CLKI_DIV"], params["CLKFB_DIV"], params["CLKOP_DIV"], f) == (1, 4, 6, 100e6)
    params, f = ecp5_pll(25e6, 62.5e6)
    assert (params["CLKI_DIV"], params["CLKFB_DIV"], params["CLKOP_DIV"], f) == (2, 5, 10, 62.5e6)


def test_plan_clock_uses_oscillator_when_it_matches_and_rejects_impossible():
    assert plan_clock("iCE40", 12e6, 12e6).pll is None
    assert plan_clock("ecp5", 25e6, 50e6).freq_hz == 50e6
    with pytest.raises(ValueError, match=r"iCE40 PLL cannot make 5 MHz from 12 MHz \(its output range is 16-275"):
        plan_clock("iCE40", 12e6, 5e6)


def test_board_specs_load_and_fit_their_own_defaults():
    for name in board_names():
        spec = BoardSpec.load(name)
        ArrayConfig(**spec.array)  # the shipped defaults are a valid configuration
        assert spec.platform_class().__name__.endswith("Platform")
    with pytest.raises(ValueError, match=r"unknown board 'nope'; choose one of icebreaker, ulx3s-85f"):
        BoardSpec.load("nope")


# --- bridge + array ---

def _check(enc, run):
    ly = enc.layer
    assert np.array_equal(run.outputs, conv2d(ly.weights, ly.activations, ly.stride, ly.padding, enc.cfg.acc_bits))
    assert run.perf == simulate(enc).to_dict()


@pytest.mark.parametrize("dataflow, perf_bits, word_register",
                         [("kernel", 48, True), pytest.param("dense", 48, True, marks=pytest.mark.slow),
                          ("kernel", 24, False)])
def test_layer_through_uart_bridge(dataflow, perf_bits, word_register):
    """48-bit counters are read back through the bridge's two-step byte pick, 24-bit ones in one step;
    outputs through the bridge's word register (the ECP5's) and picked from the read-back's head (the iCE40's)."""
    cfg = ArrayConfig(dataflow=dataflow, perf_bits=perf_bits, **TINY)
    ly = random_layer(np.random.default_rng(3), m=3, c=2, h=4, w=4, padding=1, kernel_density=0.6)
    enc = encode(ly, cfg)
    _check(enc, simulate_session(cfg, layer_session(Protocol(manifest(cfg)), enc), word_register=word_register))


def test_long_transfers_are_split_into_chunks(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_CHUNK", 7)  # the host's split (the bridge counts any 2-byte n)
    cfg = ArrayConfig(dataflow="kernel", **TINY)
    ly = random_layer(np.random.default_rng(4), m=2, c=1, h=5, w=5, kernel_density=1.0)
    enc = encode(ly, cfg)
    proto = Protocol(manifest(cfg))
    assert len(proto.load(proto.packing.load_words(enc))) > 1 and len(proto.read(ly.m * ly.e * ly.f)) > 1
    _check(enc, simulate_session(cfg, layer_session(proto, enc)))


def _raw(*steps):
    """A session of raw transactions (or idle gaps); returns the replies."""
    replies = []
    for step in steps:
        replies.append((yield step))
    return replies


def test_bridge_rejects_bad_opcode_and_times_out_mid_command():
    cfg = ArrayConfig(**TINY)
    status = Transaction(bytes([Op.STATUS]), 1, "STATUS")
    replies = simulate_session(cfg, _raw(
        Transaction(b"x", 1, "bad"), status, status,
        Transaction(bytes([Op.LOAD, 1]), 0, "half a LOAD"), 400, status,
        Transaction(bytes([Op.INFO]), 8, "INFO"),
    ), timeout=200)
    assert replies[0] == b"!"
    assert decode_status(replies[1][0])["bad_opcode"] and not decode_status(replies[2][0])["bad_opcode"]
    assert decode_status(replies[5][0])["timeout"]
    assert replies[6] == info_reply(cfg)


def test_host_refuses_a_bitstream_built_for_another_array():
    built = ArrayConfig(**TINY)
    host = Protocol(manifest(ArrayConfig(**{**TINY, "acc_depth": 8})))
    with pytest.raises(BridgeError, match="built for a different array configuration"):
        host.check_info(info_reply(built))
    with pytest.raises(BridgeError, match="not a sparse-PE bridge"):
        host.check_info(b"\x00" * 8)


# --- host command line ---

def _layer_file(tmp_path):
    ly = random_layer(np.random.default_rng(5), m=2, c=2, h=4, w=4, padding=1, kernel_density=0.5)
    path = tmp_path / "layer.npz"
    save_layer(path, ly)
    return path


def test_run_cli_on_simulated_board(tmp_path, capsys):
    path = _layer_file(tmp_path)
    rc = board_cli.main(["run", "--port", "sim", "--layer", str(path), "--rows", "2", "--cols", "2",
                     "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "outputs_match=True" in out and "counters_match=True" in out


def test_run_cli_runs_a_layer_larger_than_the_buffers_in_passes(tmp_path, capsys):
    """A board is one more target of host.array: a layer over its output buffer runs in passes (here two
    bands of output rows) through sim.run's pass code, over the simulated UART bridge, every pass exact."""
    path = tmp_path / "layer.npz"
    ly = random_layer(np.random.default_rng(5), m=1, c=1, h=4, w=4, padding=1, kernel_density=1.0)
    save_layer(path, ly)
    flags = {**TINY, "out_depth": 8}  # 16 outputs, 8 per pass
    pl = fit_or_plan(ly, ArrayConfig(**{**BoardSpec.load("icebreaker").array, **flags}))  # the command's array
    assert pl is not None and len(pl.passes) == 2
    rc = board_cli.main(["run", "--port", "sim", "--layer", str(path), "--json", str(tmp_path / "r.json"),
                         *(f"--{k.replace('_', '-')}={v}" for k, v in flags.items())])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "kernel 2x2 on sim in 2 passes: outputs_match=True" in out and "counters_match=True" in out
    assert err == ("the layer does not fit the buffers in one run: 2 passes of 1 filters x 2 output rows x 1 input "
                   "channels\n")
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["outputs_match"] and rep["cycles_match"] and rep["counters_match"] and rep["problems"] == []
    assert [p["rows"] for p in rep["passes"]] == [[0, 2], [2, 4]]
    for p, want in zip(rep["passes"], pl.passes, strict=True):  # each pass against its own golden prediction
        assert p["outputs_match"] and p["counters_match"]
        assert p["cycles"] == p["predicted_cycles"] == simulate(encode(want.layer, pl.cfg)).busy_cycles
    assert rep["cycles"] == sum(p["cycles"] for p in rep["passes"])


def test_run_cli_errors(tmp_path, capsys, monkeypatch):
    path = _layer_file(tmp_path)
    with pytest.raises(SystemExit) as e:
        board_cli.main(["run", "--port", "sim", "--layer", str(path), "--board", "nope"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        board_cli.main(["run", "--port", "sim", "--layer", str(tmp_path / "missing.npz")])
    assert e.value.code == 2 and "does not exist" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "serial", None)  # as if pyserial were not installed
    assert board_cli.main(["run", "--port", "/dev/ttyUSB9", "--layer", str(path), "--rows", "2", "--cols", "2"]) == 1
    assert "pip install pyserial" in capsys.readouterr().err
