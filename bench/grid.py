"""The grid of ``bench.sweep``: which runs a sweep makes, and the key that names each run.

A run is one layer (:mod:`bench.layers`) pruned at the granularity its dataflow can skip (:data:`PAIRING`,
from ``golden.dataflow``), at one target sparsity and seed, on one array. Its :attr:`RunSpec.key` hashes
exactly those choices, so the results store (:mod:`bench.store`) can tell a run already made from a new one.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from golden.config import ArrayConfig
from golden.dataflow import DATAFLOW_TABLE
from golden.jsonl import record_key
from golden.prune import GRANULARITIES

from .layers import layer_specs

DEFAULT_SPARSITIES = (0.0, 0.5, 0.75, 0.9)
DEFAULT_ARRAYS = ("4x4", "2x8")
DEFAULT_LAYERS = ("cifar", "alexnet")
DEFAULT_PARAMS = {"epilogue": 1}
"""Array parameters of every sweep array unless ``--param`` overrides them: the output stage, so a layer
whose output row of all input channels exceeds the activation buffer runs in input-channel chunks
(``golden.passes``); layers without an output stage pass through it unchanged."""

PAIRING = {name: d.pruning for name, d in DATAFLOW_TABLE.items()}
"""Pruning granularity of each dataflow (``golden.dataflow``; None: the dense baseline is never pruned)."""


def available_dataflows() -> tuple[str, ...]:
    """Dataflows the generator builds *now* (read at call time: another module may have grown the tuple)."""
    config = importlib.import_module("golden.config")
    return tuple(config.DATAFLOWS)


def granularity_for(dataflow: str) -> str | None:
    """The pruning granularity whose zeros ``dataflow`` can skip (None for dense)."""
    if dataflow in PAIRING:
        return PAIRING[dataflow]
    if dataflow in GRANULARITIES:
        return dataflow
    raise ValueError(f"no pruning granularity is paired with dataflow {dataflow!r}; "
                     f"add it to golden.dataflow.DATAFLOW_TABLE")


@dataclass(frozen=True)
class RunSpec:
    """One point of the grid: a layer, pruned at one granularity and sparsity, run on one array."""

    dataflow: str
    array: tuple[tuple[str, int], ...]  # rows, cols and any --param overrides, sorted by name
    layer: str
    granularity: str  # "none" for the dense baseline
    target_sparsity: float
    seed: int

    @property
    def array_dict(self) -> dict[str, int]:
        return dict(self.array)

    @property
    def key(self) -> str:
        """The record key: the array it *builds* (every ``ArrayConfig`` field, defaults resolved), so a
        record made before a default changed (issue 24 gave ``V = 1`` a second drain lane) is run again,
        not resumed with another array's cycles; and the layer, pruning and seed."""
        ident = {"dataflow": self.dataflow, "array": self.config().to_dict(), "layer": self.layer,
                 "layer_shape": layer_specs([self.layer])[0].shape(), "granularity": self.granularity,
                 "sparsity": round(self.target_sparsity, 6), "seed": self.seed}
        return record_key(ident)

    def to_dict(self) -> dict:
        return {"key": self.key, "dataflow": self.dataflow, "array": self.array_dict, "layer": self.layer,
                "granularity": self.granularity, "target_sparsity": self.target_sparsity, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        return cls(d["dataflow"], tuple(sorted(d["array"].items())), d["layer"], d["granularity"],
                   float(d["target_sparsity"]), int(d["seed"]))

    def config(self) -> ArrayConfig:
        return ArrayConfig(dataflow=self.dataflow, **self.array_dict)


def plan(dataflows: Sequence[str], sparsities: Sequence[float], arrays: Sequence[dict[str, int]],
         layers: Sequence[str], seeds: Sequence[int] = (0,)) -> list[RunSpec]:
    """Every run of the grid, dense baseline included, without repeats; in build order."""
    specs = layer_specs(list(layers))
    flows = ["dense"] + [d for d in dataflows if d != "dense"]
    runs: list[RunSpec] = []
    for arr in arrays:
        array = tuple(sorted(arr.items()))
        for df in flows:
            gran = granularity_for(df)
            levels = [0.0] if gran is None else list(sparsities)
            for spec in specs:
                for seed in seeds:
                    for s in levels:
                        runs.append(RunSpec(df, array, spec.name, gran or "none", float(s), int(seed)))
    return list(dict.fromkeys(runs))
