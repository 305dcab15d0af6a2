"""``sim.verilator.generated``: an array's Verilog is generated once per parameters and generator sources."""

from __future__ import annotations

from golden.config import ArrayConfig
from sim import verilator as sv


def _counting_generate(calls: list):
    def fake(cfg, out):
        calls.append(cfg)
        (out / "sparse_pe_array.v").write_text(f"// {cfg.rows}x{cfg.cols}\n")
        (out / "sparse_pe_array.json").write_text("{}")
        return out / "sparse_pe_array.v", out / "sparse_pe_array.json"
    return fake


def test_the_same_parameters_and_sources_generate_once(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(sv, "generate", _counting_generate(calls))
    a = sv.generated(ArrayConfig(), tmp_path)
    b = sv.generated(ArrayConfig(), tmp_path)
    assert a == b and len(calls) == 1 and a[0].read_text() == "// 4x4\n"
    sv.generated(ArrayConfig(rows=2), tmp_path)  # other parameters: generated
    assert len(calls) == 2


def test_a_changed_generator_source_generates_again(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(sv, "generate", _counting_generate(calls))
    first = sv.generated(ArrayConfig(), tmp_path)
    monkeypatch.setattr(sv, "generator_digest", lambda: "another-source")
    second = sv.generated(ArrayConfig(), tmp_path)
    assert len(calls) == 2 and first[0].parent != second[0].parent


def test_the_digest_covers_the_gateware_and_golden_sources():
    import golden
    import hdl

    assert sv.GENERATOR_PACKAGES == (golden, hdl)
    assert sv.generator_digest() == sv.generator_digest() and len(sv.generator_digest()) == 16
