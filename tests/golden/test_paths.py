"""golden.paths: one rule for where caches and builds go, and generated files free of machine paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from golden import paths


@pytest.fixture
def no_cache_env(monkeypatch):
    monkeypatch.delenv(paths.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def test_a_checkout_caches_in_its_build_directory(no_cache_env):
    checkout = paths.source_checkout()
    assert checkout is not None and (checkout / "pyproject.toml").is_file()
    assert paths.cache_dir("verilator") == checkout / "build" / "verilator"
    assert paths.records_root() == checkout


def test_the_named_cache_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "c"))
    assert paths.cache_dir("synth") == tmp_path / "c" / "synth"


def test_an_installed_copy_caches_in_the_user_cache(no_cache_env, monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "PACKAGES_ROOT", tmp_path / "site-packages")  # no pyproject.toml beside it
    assert paths.source_checkout() is None
    assert paths.cache_root() == Path.home() / ".cache" / "sparse-pe-gen"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir("verilator") == tmp_path / "xdg" / "sparse-pe-gen" / "verilator"
    monkeypatch.chdir(tmp_path)
    assert paths.records_root() == tmp_path  # bench/results of the user's directory, not of site-packages


def test_generated_files_name_paths_relative_to_the_checkout(tmp_path):
    checkout = paths.source_checkout()
    assert paths.display_path(checkout / "bench" / "results" / "results.jsonl") == "bench/results/results.jsonl"
    assert paths.display_path(tmp_path / "mine.jsonl") == "mine.jsonl"
    line = f"      {checkout}/hdl/loader.py:134"
    assert paths.unrooted(line) == "      hdl/loader.py:134"


def test_the_board_files_of_a_checkout_are_its_constraints_directory():
    from hdl.boards import CONSTRAINTS_DIR, board_names

    assert CONSTRAINTS_DIR == paths.source_checkout() / "constraints"
    assert board_names() == ["icebreaker", "ulx3s-85f"]


def test_synth_reports_name_source_lines_relative_to_the_checkout():
    from hdl.synth import critical_path_text

    log = f"Info: Critical path report for clock 'clk':\nInfo:        {paths.source_checkout()}/hdl/loader.py:134\n"
    assert critical_path_text(log) == ["Critical path report for clock 'clk':", "        hdl/loader.py:134"]
