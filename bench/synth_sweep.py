"""The synthesis side of ``bench.sweep --synth BOARD``: every swept array built for a board by ``hdl.synth``.

Each array is synthesized as ``python -m hdl.synth`` would build it for the board (the board's array
defaults, then the sweep's dataflow, shape and ``--param`` overrides) and stored as one ``kind: synth``
record in the sweep's results (:mod:`bench.store`), keyed by :func:`synth_key`.
"""

from __future__ import annotations

import importlib
import time

from golden.config import ArrayConfig
from golden.jsonl import record_key
from golden.paths import cache_dir, display_path


def load_synth():
    """``hdl.synth`` and ``hdl.boards``, or None with the reason. Imported here, when a sweep asks for
    syntheses, rather than at the top: a sweep runs without them (an install may lack the FPGA flow)."""
    try:
        synth = importlib.import_module("hdl.synth")
        board = importlib.import_module("hdl.boards")
    except ImportError as e:
        if getattr(e, "name", None) in ("hdl.synth", "hdl.boards", None):
            return None, f"hdl.synth is not available ({e})"
        raise
    if not callable(getattr(synth, "synthesize", None)) or not hasattr(board, "BoardSpec"):
        return None, "hdl.synth has no synthesize(spec, cfg, out_dir, ...) / hdl.boards has no BoardSpec"
    return (synth, board), ""


def synth_config(dataflow: str, array: dict[str, int], board: str) -> dict:
    """The array synthesized for ``board``: the board's array defaults (``constraints/<board>.json``, sized to
    fit the device), then the sweep's dataflow, shape and ``--param`` overrides -- as ``python -m hdl.synth``."""
    mods, why = load_synth()
    if mods is None:
        raise RuntimeError(why)
    spec = mods[1].BoardSpec.load(board)
    return ArrayConfig.from_dict({**spec.array, "dataflow": dataflow, **array}).to_dict()


def synth_key(cfg_dict: dict, board: str) -> str:
    ident = {"kind": "synth", "array_config": cfg_dict, "board": board}
    return record_key(ident)


def synth_array(cfg_dict: dict, board: str, key: str, git_commit: str = "") -> dict:
    """Synthesize one array for ``board`` through ``hdl.synth``; a ``kind: synth`` record (never raises).

    The record's ``synth`` holds Fmax (``fmax_mhz``), ``timing_passed`` and per resource kind the cells
    used (``LC``, ``DSP``, ``BRAM``, ...) and their share of the device (``LC_pct``, ...).
    """
    cfg = ArrayConfig.from_dict(cfg_dict)
    base = {"key": key, "kind": "synth", "dataflow": cfg.dataflow, "array": {"rows": cfg.rows, "cols": cfg.cols},
            "array_config": cfg_dict, "board": board, "git_commit": git_commit,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        mods, why = load_synth()
        if mods is None:
            return {**base, "status": "error", "error": why}
        synth, boards = mods
        spec = boards.BoardSpec.load(board)
        out = cache_dir("synth") / f"{board}-{cfg.dataflow}-{cfg.rows}x{cfg.cols}-{key}"
        rep = synth.synthesize(spec, cfg, out, clock_mhz=spec.clock_mhz, baud=spec.baud)
    except Exception as e:
        return {**base, "status": "error", "error": f"{type(e).__name__}: {e}"}
    values = {"fmax_mhz": rep.get("fmax_mhz"), "timing_passed": rep.get("timing_passed"),
              "clock_mhz": rep.get("clock", {}).get("generated_mhz"), "seconds": rep.get("seconds")}
    for kind, u in rep.get("utilization", {}).items():
        values[kind] = u.get("used")
        if "percent" in u:
            values[f"{kind}_pct"] = u["percent"]
    return {**base, "status": "ok", "synth": values, "report": display_path(out / "synth_report.json")}
