"""Generator parameters, the ``hdl.generate`` command and its manifest."""

from __future__ import annotations

import json

import pytest

from golden.config import ArrayConfig
from hdl.generate import main


@pytest.mark.parametrize("kwargs,match", [
    (dict(dataflow="bogus"), r"unknown dataflow 'bogus'; choose one of dense, kernel, vector, strided, element"),
    (dict(rows=0), r"rows must be in \[1, 64\], not 0"),
    (dict(acc_bits=12), r"acc_bits must be in \[16, 64\], not 12; a product of 8-bit weights"),
    (dict(max_stride=5), r"max_stride must be in \[1, 4\], not 5"),
    (dict(acc_depth=2.5), r"acc_depth must be an integer, not 2.5"),
    (dict(perf_bits=8), r"perf_bits must be in \[16, 64\], not 8"),
    (dict(drain_lanes=8), r"drain_lanes must be in \[1, 4\], not 8; the drain writes columns of one PE row"),
    (dict(drain_lanes=3), r"drain_lanes must be a power of two \(output-buffer banks\), not 3"),
    (dict(drain_lanes=4, out_depth=4098), r"out_depth must be a multiple of drain_lanes=4 \(one bank per lane\)"),
    (dict(dsp_packing=3), r"dsp_packing must be in \[1, 2\], not 3"),
    (dict(dsp_packing=2, cols=1, drain_lanes=1), r"dsp_packing 2 shares a multiplier between neighbouring PE "
                                                 r"columns; it needs cols >= 2"),
    (dict(dsp_packing=2, act_bits=9), r"dsp_packing 2: 9-bit activations x 8-bit weights .*; use dsp_packing 1 "
                                      r"\(at most 8-bit activations pack with 8-bit weights\)"),
])
def test_array_config_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ArrayConfig(**kwargs)


def test_generate_writes_verilog_and_manifest(tmp_path):
    assert main(["--sparsity", "kernel", "--rows", "2", "--cols", "3", "--acc-depth", "4", "-o", str(tmp_path)]) == 0
    v = (tmp_path / "sparse_pe_array.v").read_text()
    man = json.loads((tmp_path / "sparse_pe_array.json").read_text())
    assert "module sparse_pe_array" in v
    assert man["params"]["rows"] == 2 and man["params"]["dataflow"] == "kernel"
    # the default array has the output stage: partial sums, biases and requantization are load targets
    assert set(man["load_targets"]) == {"act", "weight", "chan_index", "unit_index", "psum", "bias", "requant"}
    assert man["params"]["epilogue"] == 1
    assert {"load__payload", "o__payload", "cfg", "start", "busy", "done", "perf"} <= set(man["ports"])
    assert man["layouts"]["perf"]["busy_cycles"] == {"offset": 0, "width": 48}
    # memory zero-initialisation is one loop, not one line per word
    assert v.count("initial begin") < 40 and len(v) < 500_000


@pytest.mark.parametrize("argv,msg", [
    (["--rows", "0"], "--rows must be in [1, 64], not 0"),
    (["--sparsity", "nope"], "invalid choice: 'nope'"),
    (["--acc-bits", "8"], "--acc-bits must be in [16, 64]"),
])
def test_generate_bad_parameters_exit_2_with_one_line(argv, msg, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(argv + ["-o", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert msg in err[-1] and err[-1].startswith("python -m hdl.generate: error:")


# --- defaults that follow the lanes (issue 22) ---

def test_the_feed_follows_the_lanes_and_explicit_values_override():
    """``--lanes 9`` alone builds the wide feed (``WIDE_FEED``), not the ``V = 1`` loader that starves it;
    each feed field given explicitly wins over the rule, and the manifest carries concrete numbers."""
    from golden.config import FEED_RULE, feed_for
    from golden.lanes import WIDE_FEED

    assert {k: getattr(ArrayConfig(lanes=9), k) for k in WIDE_FEED} == WIDE_FEED
    assert (ArrayConfig().act_lanes, ArrayConfig().act_rows, ArrayConfig().drain_lanes) == (2, 1, 2)
    wide = ArrayConfig(lanes=9, drain_lanes=2)
    assert (wide.act_lanes, wide.act_rows, wide.drain_lanes) == (6, 2, 2)
    assert ArrayConfig(lanes=9, cols=2).drain_lanes == 2  # capped at the largest power of two <= cols
    assert ArrayConfig(lanes=9, cols=3).drain_lanes == 2
    d = ArrayConfig(lanes=5).to_dict()
    assert all(isinstance(d[k], int) for k in WIDE_FEED) and ArrayConfig.from_dict(d) == ArrayConfig(lanes=5)
    for v in range(1, 10):  # every default is a legal array, and the rule is monotone in V
        feed = feed_for(v, 4)
        assert ArrayConfig(lanes=v).drain_lanes == feed["drain_lanes"] <= 4
        assert all(feed[k] <= feed_for(v + 1, 4)[k] for k in feed)
    assert FEED_RULE[0][0] == 1


def test_the_default_feed_keeps_nine_lanes_busy_on_a_kernel_pruned_layer():
    """On the model: ``--lanes 9`` with no feed flags takes the wide feed's cycles on a held-out 75 %
    kernel-pruned layer, where the ``V = 1`` feed is MAC-starved (loader-bound) and over 1.5x slower."""
    import numpy as np

    from golden import metrics
    from golden.encode import encode
    from golden.layer import Layer
    from golden.prune import prune
    from golden.timing import simulate

    rng = np.random.default_rng(22)
    w = np.clip(np.round(rng.normal(0, 40, (32, 24, 3, 3))), -128, 127).astype(np.int64)
    layer = Layer(prune(w, "kernel", 0.75).weights, rng.integers(-128, 128, (24, 14, 14)), 1, 1)
    fed = simulate(encode(layer, ArrayConfig(lanes=9))).to_dict()
    starved = simulate(encode(layer, ArrayConfig(lanes=9, act_lanes=2, act_rows=1, drain_lanes=1))).to_dict()
    assert starved["busy_cycles"] > 1.5 * fed["busy_cycles"]
    assert metrics.bound(fed) == "mac" and metrics.bound(starved) == "loader"


def test_generate_names_the_lanes_and_every_changed_parameter():
    from hdl.generate import describe

    assert describe(ArrayConfig()) == "kernel array 4x4, 1 lane per PE, acc_depth 32"
    line = describe(ArrayConfig(lanes=9, epilogue=0, act_depth=1024))
    assert line == ("kernel array 4x4, 9 lanes per PE, acc_depth 32, act_lanes 6, act_rows 2, drain_lanes 4, "
                    "act_depth 1024, epilogue 0")


def test_generate_help_states_the_feed_rule(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--act-lanes N activations of a window row the tile loader reads per cycle (default: by --lanes: " \
           "V>=1: 2, V>=5: 3, V>=9: 6)" in out


def test_reproduce_flags_name_a_feed_only_where_it_differs_from_the_lanes_rule():
    """``sim.regress`` prints the flags that rebuild a case's array; a feed that followed the lanes needs
    none, a narrow feed on a wide array needs all three (else ``--lanes 9`` alone would build the wide one)."""
    from sim.regress import array_flags

    assert array_flags(ArrayConfig(lanes=9)) == "--lanes 9"
    assert array_flags(ArrayConfig(lanes=9, act_lanes=2, act_rows=1, drain_lanes=1)) == \
        "--lanes 9 --act-lanes 2 --act-rows 1 --drain-lanes 1"
    assert array_flags(ArrayConfig(epilogue=0)) == "--epilogue 0"


def test_with_lanes_re_derives_the_feed_that_followed_the_lanes():
    """``sim.regress --lanes 1,3,9`` builds each variant with ``with_lanes``: a feed that followed V = 1
    follows V = 9 (``dataclasses.replace`` kept V = 1's, starving the wide variant); a feed set apart from
    the rule stays."""
    from golden.config import feed_for
    from golden.lanes import WIDE_FEED

    wide = ArrayConfig().with_lanes(9, dataflow="element")
    assert wide == ArrayConfig(lanes=9, dataflow="element")
    assert {k: getattr(wide, k) for k in WIDE_FEED} == feed_for(9, 4)
    own = ArrayConfig(drain_lanes=1).with_lanes(9)
    assert own.drain_lanes == 1 and (own.act_lanes, own.act_rows) == (6, 2)
    assert ArrayConfig(lanes=9).with_lanes(1) == ArrayConfig()
