"""The gateware's struct layouts are views of ``golden.words``: the same fields at the same bits."""

from __future__ import annotations

import pytest
from amaranth.hdl import Shape

from golden.config import DATAFLOWS, ArrayConfig
from golden.words import host_layouts, word_layouts
from hdl.generate import manifest
from hdl.layouts import word_struct


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("lanes", [1, 3])
def test_every_words_struct_has_the_layouts_offsets_widths_and_signs(dataflow, lanes):
    cfg = ArrayConfig(dataflow=dataflow, lanes=lanes)
    for name, layout in word_layouts(cfg).items():
        struct = word_struct(layout)
        assert struct.size == layout.width, name
        for field, width in layout.fields:
            member = struct[field]
            shape = Shape.cast(member.shape)
            assert (member.offset, shape.width, shape.signed) == (layout.offset(field), width,
                                                                  field in layout.signed), (name, field)


def test_the_manifest_records_the_host_layouts():
    cfg = ArrayConfig(dataflow="element", lanes=3)
    assert manifest(cfg)["layouts"] == {name: lay.manifest() for name, lay in host_layouts(cfg).items()}
