"""bench.netlist_hashes: the proof a refactor left the netlists alone, and how it tells a renumbering apart."""

from __future__ import annotations

from bench import netlist_hashes as nh


def test_the_matrix_covers_every_dataflow_lane_count_stage_and_shape():
    names = [nh.key(c) for c in nh.matrix()]
    assert len(names) == len(set(names)) == 60
    assert "kernel-4x4-v9-e1" in names and "element-2x3-v3-e0" in names


def test_renumbered_duplicates_and_reordered_statements_are_told_apart_from_a_change():
    a = b"wire \\x$12 ;\nassign y = a;\nassign \\x$12 = b;\n"
    renumbered = b"assign \\x$7 = b;\nwire \\x$7 ;\nassign y = a;\n"
    changed = b"wire \\x$12 ;\nassign y = b;\nassign \\x$12 = a;\n"
    assert nh.modulo_numbering(a) == nh.modulo_numbering(renumbered) != nh.modulo_numbering(changed)
    assert nh.modulo_numbering(b"module \\m (b, a$3, c);") == nh.modulo_numbering(b"module \\m (a, c, b);")
    wrapped = b"module \\m (b, a\n, c);\nwire a;"  # Yosys wraps a long port list
    assert nh.modulo_numbering(wrapped) == nh.modulo_numbering(b"wire a;\nmodule \\m (a, c, b);")
    rec = {"c": {"verilog": "1", "manifest": "m", "verilog_modulo_numbering": "n"}}
    assert nh.compare(rec, {"c": {"verilog": "2", "manifest": "m", "verilog_modulo_numbering": "n"}}) == [
        f"c: {nh.NUMBERING_ONLY}"]
    assert nh.compare(rec, {"c": {"verilog": "2", "manifest": "m", "verilog_modulo_numbering": "x"}}) == [
        "c: verilog changed"]
    assert nh.compare(rec, rec) == []
