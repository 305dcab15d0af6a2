"""The boards: one build description per board, read from ``constraints/<board>.json``.

A board file holds what a build of the accelerator on that board needs besides the array: the
Amaranth platform, the clock and baud rate asked for, the board's default array flags (and the
reasons they differ from :class:`~golden.config.ArrayConfig`'s), presets, the synthesis and
place-and-route options, LEDs and pins to drive. ``constraints/README.md`` documents every field;
:class:`BoardSpec` rejects a field it does not know, so a misspelt setting is never ignored.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from golden.paths import source_checkout

CONSTRAINTS_DIR = (source_checkout() or Path(__file__).resolve().parent) / "constraints"
"""The board files: ``constraints/`` of a source checkout; a wheel ships them as ``hdl/constraints/``
(``pyproject.toml`` maps the directory there), since an installed copy has no checkout around it."""


@dataclass(frozen=True)
class BoardSpec:
    """One board's build settings, read from ``constraints/<name>.json`` (see constraints/README.md)."""

    name: str
    platform: str
    clock_mhz: float
    baud: int
    array: dict
    synth_opts: list = field(default_factory=list)
    nextpnr_opts: list = field(default_factory=list)
    dsp_scope: str = "all"
    dsp_max: int | None = None
    replicate: bool = False
    floorplan: dict | None = None
    resources: dict = field(default_factory=dict)
    leds: dict = field(default_factory=dict)
    drive_high: list = field(default_factory=list)
    seed: int = 1
    presets: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)  # array flag -> why the board's default differs from ArrayConfig's

    def preset(self, name: str) -> dict:
        """Preset ``name`` (``{"array": {...}, "router": ..., "about": ...}``): a second measured build of
        this board, e.g. the wide-PE array; ``ValueError`` naming the choices for an unknown one."""
        if name not in self.presets:
            have = ", ".join(sorted(self.presets)) or "none"
            raise ValueError(f"board {self.name!r} has no preset {name!r} (presets: {have}; "
                             f"see constraints/{self.name}.json)")
        return self.presets[name]

    def build_defaults(self, preset: str | None = None) -> dict:
        """Defaults of a build command (``hdl.synth``, ``bench.fpga_area``): the board's array flags, those
        of ``preset`` over them, and ``router`` where the preset names one. ``ValueError`` for an unknown
        preset."""
        chosen = self.preset(preset) if preset is not None else {}
        return {**self.array, **chosen.get("array", {}), **({"router": chosen["router"]} if "router" in chosen else {})}

    @classmethod
    def load(cls, name: str) -> BoardSpec:
        path = CONSTRAINTS_DIR / f"{name}.json"
        if not path.exists():
            raise ValueError(f"unknown board {name!r}; choose one of {', '.join(board_names())}")
        raw = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__) - {"name"}
        unknown = sorted(set(raw) - known)
        if unknown:  # a misspelt setting must not be ignored silently
            raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(name=name, **raw)

    def platform_class(self) -> type:
        module, _, attr = self.platform.rpartition(".")
        return getattr(importlib.import_module(module), attr)


def board_names() -> list[str]:
    return sorted(p.stem for p in CONSTRAINTS_DIR.glob("*.json"))
