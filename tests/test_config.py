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
    assert set(man["load_targets"]) == {"act", "weight", "chan_index", "unit_index"}
    assert {"load__payload", "o__payload", "cfg", "start", "busy", "done", "perf"} <= set(man["ports"])
    assert man["layouts"]["perf"]["busy_cycles"] == {"offset": 0, "width": 48}
    # memory zero-initialisation is one loop, not one line per word
    assert v.count("initial begin") < 40 and len(v) < 400_000


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
