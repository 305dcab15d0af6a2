"""The UART host bridge + array in Verilator, driven over a bit-level UART model by cocotb (``sim/tb_bridge.py``).

The host side is :func:`golden.protocol.layer_session`, the same byte stream a board gets from
``python -m host.board run``; tests/test_board.py runs it in Amaranth's simulator, this file on the
Verilog the board is built from. The file's time is two tiny Verilator builds (about a minute of CPU each);
the tests are in an order that puts them on different workers under ``pytest -n 2`` (xdist hands each worker
two consecutive tests), so they compile in parallel.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden.config import ArrayConfig
from golden.layerio import save_layer
from golden.protocol import Op, decode_status, info_reply
from sim.verilator import (
    BRIDGE_TOP,
    build_bridge,
    generate_bridge,
    lint,
    run_bridge_job,
    run_bridge_layers,
)
from tests.support import random_layer

TINY = dict(rows=2, cols=2, acc_depth=4, act_depth=256, weight_depth=512, index_depth=64, out_depth=256,
            epilogue=0)  # the output stage is tests/test_output_stage.py's subject


def test_bridge_verilog_is_lint_clean(tmp_path):
    """The Verilog a bitstream is built from passes the same strict lint (and waivers) as the bare array."""
    v_path, _ = generate_bridge(ArrayConfig(dataflow="kernel", **TINY), tmp_path)
    proc = lint(v_path, top=BRIDGE_TOP)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _layers(dataflow: str) -> list:
    rng = np.random.default_rng(3)
    layers = [random_layer(rng, m=3, c=2, h=4, w=4, padding=1, kernel_density=0.6)]
    if dataflow == "kernel":  # a second layer on the same DUT: stride 2, more filters than accumulators
        layers.append(random_layer(rng, m=5, c=3, h=5, w=5, stride=2, kernel_density=0.5, row_density=0.7))
    return layers


@pytest.mark.parametrize("dataflow", ["kernel", pytest.param("dense", marks=pytest.mark.slow)])
def test_layers_through_uart_bridge_bit_and_cycle_exact(dataflow):
    """Outputs bit-exact, counters exact, and cycles (the ``busy`` pulse on the pin) exact, layer after layer."""
    cfg = ArrayConfig(dataflow=dataflow, **TINY)
    layers = _layers(dataflow)
    results = run_bridge_layers(cfg, layers, name="layers")
    assert len(results) == len(layers)
    for res in results:
        assert "error" not in res, res["error"]
        assert res["outputs_match"] and res["cycles"] == res["predicted_cycles"]
        assert res["perf"] == res["predicted_perf"]


def _step(request: bytes, reply_len: int, what: str) -> dict:
    return {"request": request.hex(), "reply_len": reply_len, "what": what}


def test_bridge_rejects_bad_opcode_and_recovers_from_a_stalled_command(tmp_path):
    """The error paths of the Verilog: NAK, error bits cleared by the read, a half-sent command dropped
    by the timeout, and then a whole layer still runs exactly (a crashed host never leaves the board stuck)."""
    cfg = ArrayConfig(dataflow="kernel", **TINY)
    status = _step(bytes([Op.STATUS]), 1, "STATUS")
    save_layer(tmp_path / "layer.npz", _layers("kernel")[0])
    b = build_bridge(cfg)
    res = run_bridge_job(b, {"items": [{"raw": [
        _step(b"x", 1, "bad opcode"), status, status,
        _step(bytes([Op.LOAD, 1]), 0, "half a LOAD"), {"idle": 2 * b.info["timeout"]}, status,
        _step(bytes([Op.INFO]), 8, "INFO"),
    ]}, {"npz": str(tmp_path / "layer.npz")}]}, name="errors")
    replies = [None if r is None else bytes.fromhex(r) for r in res[0]["replies"]]
    assert replies[0] == b"!"
    assert decode_status(replies[1][0])["bad_opcode"] and not decode_status(replies[2][0])["bad_opcode"]
    assert decode_status(replies[5][0])["timeout"]
    assert replies[6] == info_reply(cfg)
    assert res[1]["outputs_match"] and res[1]["perf"] == res[1]["predicted_perf"]


def test_missing_reply_fails_naming_the_command():
    """A reply that never comes ends the run with the command, the wait and the bytes that did arrive."""
    b = build_bridge(ArrayConfig(dataflow="kernel", **TINY))
    with pytest.raises(AssertionError, match=r"no reply to STATUS within \d+ cycles \(got 1 of 2 bytes: 00\)"):
        run_bridge_job(b, {"items": [{"raw": [_step(bytes([Op.STATUS]), 2, "STATUS")]}]}, name="no-reply")
