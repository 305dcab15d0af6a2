"""Reset copies (``hdl.reset``): the domain's reset drives one kept flip-flop per subsystem, and the
array's copy one per PE row, so no single reset net reaches every register of the die."""

from __future__ import annotations

import re

from golden.config import ArrayConfig
from hdl.accelerator import Accelerator
from hdl.generate import TOP, to_verilog
from tests.support import EPILOGUE_ARRAY

SUBSYSTEMS = ("out_mem", "decoder", "loader", "sequencer", "drain", "array", "epilogue")


def test_each_subsystem_and_pe_row_is_reset_by_a_kept_copy():
    cfg = ArrayConfig(dataflow="kernel", **EPILOGUE_ARRAY)
    text = to_verilog(Accelerator(cfg), TOP)
    fed = dict(re.findall(r"^\s*sync_(\w+)_rst <= (\w+);", text, re.M))
    rows = [f"row{i}" for i in range(cfg.rows)]
    assert fed == {**{name: "rst" for name in SUBSYSTEMS}, **{row: "sync_array_rst" for row in rows}}
    for name in SUBSYSTEMS + tuple(rows):  # a deliberate replica: synthesis must not merge the copies
        assert re.search(rf"\(\* keep = 32'd1 \*\)\s*wire rst_{name};", text), name
