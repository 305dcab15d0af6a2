"""Waveforms (``--waves FILE.vcd|FILE.fst``) of ``sim.run`` and ``sim.regress --case I``: a real trace of
the design's signals on both harnesses, one-line errors for a path that cannot take one, traced builds
cached apart from untraced ones, and the Verilator build notice that no longer promises a duration."""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import sim.verilator as sv
from golden.layerio import save_layer
from tests.support import assert_one_line_error, needs_fst, random_layer, run_main

WAVES_ARRAY = dict(rows=2, cols=2, acc_depth=4, act_depth=256, weight_depth=256, index_depth=64, out_depth=256)
"""A small array: a traced model is another build, so the tests' is as quick to compile as it gets."""
ARRAY_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in WAVES_ARRAY.items()]

TOP_PORTS = {"clk", "rst", "start", "busy", "done"}
"""Top-level ports of ``hdl.accelerator`` every trace must name (the handshake a debugger looks at first)."""


def _lz4_block(src: bytes) -> bytes:
    """Decompress one LZ4 block (an FST file's hierarchy): sequences of literals and a back-reference."""
    out, i = bytearray(), 0

    def length(n: int) -> int:  # 15 means "more bytes follow, until one below 255"
        nonlocal i
        more = n == 15
        while more:
            n += src[i]
            more = src[i] == 255
            i += 1
        return n

    while True:
        token = src[i]
        i += 1
        n = length(token >> 4)
        out += src[i:i + n]
        i += n
        if i >= len(src):  # the last sequence has literals only
            return bytes(out)
        offset = int.from_bytes(src[i:i + 2], "little")
        i += 2
        for _ in range(length(token & 15) + 4):
            out.append(out[-offset])


def read_waveform(path: Path) -> tuple[set[str], dict]:
    """The variable names of a VCD or FST file and what its header says (checked to be one): for a VCD,
    ``timescale`` and the times at which ``done`` went high; for an FST, ``start`` and ``end`` times and
    ``timescale`` (a power of ten)."""
    data = path.read_bytes()
    if path.suffix == ".vcd":
        text = data.decode()
        assert text.lstrip().startswith("$"), "not a VCD header"
        head, _, body = text.partition("$enddefinitions")
        assert body, "a VCD without $enddefinitions"
        timescale = re.search(r"\$timescale\s+(\S+)\s+\$end", head).group(1)
        variables = re.findall(r"\$var\s+\S+\s+\d+\s+(\S+)\s+(\S+)", head)
        done_codes = {code for code, name in variables if name == "done"}
        t, rises = 0, []
        for line in body.splitlines():
            if line.startswith("#"):
                t = int(line[1:])
            elif line[:1] == "1" and line[1:] in done_codes:
                rises.append(t)
        return {name for _, name in variables}, {"timescale": timescale, "done_rises": rises}
    # FST: blocks of (type u8, length u64 big-endian counting itself, payload); the header block first
    assert data[0] == 0 and int.from_bytes(data[1:9], "big") == 329, "not an FST header block"
    start, end = struct.unpack(">QQ", data[9:25])
    assert math.isclose(struct.unpack("<d", data[25:33])[0], math.e), "FST header without its endianness check"
    pos, names = 0, set()
    while pos < len(data):
        kind, length = data[pos], int.from_bytes(data[pos + 1:pos + 9], "big")
        if kind == 6:  # the hierarchy, LZ4-compressed: its uncompressed size, then the block
            size = int.from_bytes(data[pos + 9:pos + 17], "big")
            hierarchy = _lz4_block(data[pos + 17:pos + 1 + length])
            assert len(hierarchy) == size
            names |= {m.decode() for m in re.findall(rb"([A-Za-z_][\w$]*)\x00", hierarchy)}
        pos += 1 + length
    assert names, "an FST file without a hierarchy"
    return names, {"start": start, "end": end, "timescale": struct.unpack("b", data[73:74])[0]}


@pytest.mark.parametrize("harness,suffix", [
    ("native", ".vcd"),  # the default run builds one traced model; the others with -m slow
    pytest.param("native", ".fst", marks=[pytest.mark.slow,
                                          needs_fst]),
    pytest.param("cocotb", ".fst", marks=[pytest.mark.slow,
                                          needs_fst]),
    pytest.param("cocotb", ".vcd", marks=pytest.mark.slow),
])
def test_sim_run_dumps_the_design_signals(tmp_path, capsys, harness, suffix):
    """A small layer with ``--waves``: a valid file of the format its suffix names, with the top-level
    ports in it, covering the run (``done`` rises once the layer has run)."""
    layer_path, report, waves = tmp_path / "layer.npz", tmp_path / "r.json", tmp_path / f"run{suffix}"
    save_layer(layer_path, random_layer(np.random.default_rng(1), 3, 2, 5, 5, kernel_density=0.5))
    from sim.run import main

    argv = ["--sparsity", "kernel", "--layer", str(layer_path), "--harness", harness, "--json", str(report),
            "--waves", str(waves), *ARRAY_FLAGS]
    code, _, err = run_main(main, argv, capsys)
    assert code == 0, err
    assert f"waveform of the run in {waves}" in err
    rep = json.loads(report.read_text())
    assert rep["outputs_match"] and rep["cycles_match"]
    names, info = read_waveform(waves)
    assert TOP_PORTS <= names, TOP_PORTS - names
    if suffix == ".vcd":
        assert info["done_rises"], "done never rose in the trace"
    else:
        seconds = (info["end"] - info["start"]) * 10.0 ** info["timescale"]
        assert seconds > rep["cycles"] * 10e-9  # both harnesses clock at 10 ns; the trace covers the run


def test_regress_traces_one_case(tmp_path, capsys):
    """``sim.regress --case I --waves``: the case's trace (the traced native model of the test above)."""
    from sim.regress import main

    waves = tmp_path / "case.vcd"
    argv = ["--seed", "12", "--dataflows", "kernel", "--case", "0", "--waves", str(waves), "--workers", "1",
            "--max-cycles", "400", "--out", str(tmp_path), "--harness", "native", *ARRAY_FLAGS]
    code, out, err = run_main(main, argv, capsys)
    assert code == 0, err
    assert "1 passed, 0 failed" in out and f"waveform of case 0 in {waves}" in err
    names, info = read_waveform(waves)
    assert TOP_PORTS <= names and info["done_rises"]


PROG_RUN, PROG_REGRESS = "python -m sim.run", "python -m sim.regress"


@pytest.mark.parametrize("name,message", [
    ("run.txt", "cannot write a .txt waveform file {p}; name it .vcd or .fst"),
    ("run", "cannot write a suffix-less waveform file {p}; name it .vcd or .fst"),
    ("missing/run.vcd", "directory {d} does not exist; create it first"),
])
def test_a_bad_waves_path_is_one_line_before_any_work(tmp_path, capsys, name, message):
    from sim.run import main

    path = tmp_path / name
    argv = ["--layer", str(tmp_path / "never-read.npz"), "--waves", str(path), "--build-dir", str(tmp_path / "never")]
    code, _, err = run_main(main, argv, capsys)
    assert code == 2
    assert_one_line_error(err, PROG_RUN, "--waves: " + message.format(p=path, d=path.parent))
    assert not (tmp_path / "never").exists()


def test_an_unwritable_waves_directory_is_one_line(tmp_path, capsys, monkeypatch):
    from sim.run import main

    real = sv.os.access
    monkeypatch.setattr(sv.os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    path = tmp_path / "run.vcd"
    code, _, err = run_main(main, ["--layer", "x.npz", "--waves", str(path)], capsys)
    assert code == 2
    assert_one_line_error(err, PROG_RUN, f"--waves: directory {tmp_path} is not writable; choose another place "
                                         "for the waveform")


def test_fst_without_lz4_is_one_line(tmp_path, capsys, monkeypatch):
    """Verilator's FST writer needs ``<lz4.h>``: without it, the user hears so before a build fails."""
    from sim.run import main

    monkeypatch.setattr(sv.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no lz4.h"))
    code, _, err = run_main(main, ["--layer", "x.npz", "--waves", str(tmp_path / "run.fst")], capsys)
    assert code == 2
    assert_one_line_error(err, PROG_RUN, "--waves: FST waveforms need the LZ4 library's headers to build the "
                                         "model (Debian: apt-get install liblz4-dev); or write a .vcd")
    assert sv.trace_problem("vcd") is None  # VCD needs nothing more


@pytest.mark.parametrize("cases", [[], ["--case", "1", "--case", "2"]])
def test_regress_waves_need_exactly_one_case(tmp_path, capsys, cases):
    from sim.regress import main

    argv = ["--waves", str(tmp_path / "w.vcd"), *cases, "--build-dir", str(tmp_path / "never")]
    code, _, err = run_main(main, argv, capsys)
    assert code == 2
    assert_one_line_error(err, PROG_REGRESS, "--waves traces one case: give exactly one --case I (run each case "
                                             "apart for more)")
    assert not (tmp_path / "never").exists()


def test_traced_builds_are_cached_apart_and_the_notice_quotes_the_last_build(tmp_path, monkeypatch, capsys):
    """A traced model never stands in for an untraced one (nor VCD for FST); the notice before a build
    quotes the last build of the same label, and no duration when there is none."""
    compiled = []
    monkeypatch.setattr(sv, "_compile", lambda v, j, directory, top, verbose, trace=None:
                        compiled.append((directory, trace)))
    monkeypatch.setenv(sv.QUICK_BUILD_ENV, "0")
    v, j = tmp_path / "a.v", tmp_path / "a.json"
    v.write_text("module a; endmodule\n")
    j.write_text("{}\n")
    root = tmp_path / "cache"
    plain = sv.compile_cached(root, "kernel-2x2", v, j, "a", False)
    vcd = sv.compile_cached(root, "kernel-2x2", v, j, "a", False, trace="vcd")
    fst = sv.compile_cached(root, "kernel-2x2", v, j, "a", False, trace="fst")
    assert len({plain, vcd, fst}) == 3 and vcd.name.startswith("kernel-2x2-vcd-")
    assert [t for _, t in compiled] == [None, "vcd", "fst"]
    assert sv.compile_cached(root, "kernel-2x2", v, j, "a", False, trace="vcd") == vcd and len(compiled) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0] == sv.build_notice("kernel-2x2", plain, None)
    (vcd / "BUILT").write_text("ok 73.4\n")
    v.write_text("module a; wire w; endmodule\n")  # the gateware changed: a new build of the same label
    newer = sv.compile_cached(root, "kernel-2x2", v, j, "a", False, trace="vcd")
    assert newer != vcd
    assert capsys.readouterr().err.splitlines()[0] == sv.build_notice("kernel-2x2-vcd", newer, 73.4)


def test_the_build_notice_claims_no_fixed_duration(tmp_path):
    first = sv.build_notice("lanes-4x4-v9", tmp_path, None)
    assert first == (f"building the Verilator model of lanes-4x4-v9 (first build of this configuration; larger "
                     f"arrays take longer; cached in {tmp_path}) ...")
    assert not re.search(r"\d+ s\b|minute", first)
    assert "its last build took 190 s;" in sv.build_notice("lanes-4x4-v9", tmp_path, 189.6)
    assert sv.last_build_seconds(tmp_path, "x") is None
    for name, stamp in (("x-0123456789ab", "ok\n"), ("x-O0-0123456789ab", "ok 5.0\n")):  # old stamp; other label
        (tmp_path / name).mkdir()
        (tmp_path / name / "BUILT").write_text(stamp)
    assert sv.last_build_seconds(tmp_path, "x") is None
    assert sv.last_build_seconds(tmp_path, "x-O0") == 5.0
