"""Sparsity and efficiency metrics (BRIEF §5); the names here are used everywhere in reports.

* ``useful_macs`` = non-zero weights x output pixels (every non-zero weight meets every output pixel
  once; padding products count, as the hardware must do them);
* ``ideal_cycles`` = ceil(useful MACs / multipliers); ``utilization`` = useful MACs / (multipliers x
  cycles), with multipliers = PEs x lanes (``ArrayConfig.multipliers``): a ``V``-lane PE does up to
  ``V`` MACs a cycle, so dividing by the PEs alone would report a utilization above 1;
* ``lane_utilization`` = useful MACs / (multipliers x MAC cycles): how full the issuing cycles were;
* ``bound``: what limits a run, the MACs, the loader or the drain (from its counters);
* ``speedup`` = dense cycles / sparse cycles (same layer, same array);
* ``compression_ratio`` = dense weight bits / (stored weight bits + index bits) -- Mao et al.'s index
  saving shows up here: a coarse index costs few bits per stored weight;
* ``ops_saved`` = fraction of the dense layer's MACs the pruning removes (Schulte et al.'s
  operation-based sparsity);
* ``memory_references`` = activation + weight + index buffer reads + output writes, in words and bits.
"""

from __future__ import annotations

import numpy as np

from .encode import EncodedLayer
from .layer import Layer


def sparsity(weights: np.ndarray) -> float:
    """Fraction of zero weights."""
    w = np.asarray(weights)
    return float(np.count_nonzero(w == 0)) / w.size


def useful_macs(layer: Layer) -> int:
    return int(np.count_nonzero(layer.weights)) * layer.e * layer.f


def dense_macs(layer: Layer) -> int:
    return int(layer.weights.size) * layer.e * layer.f


def ideal_cycles(layer: Layer, multipliers: int) -> int:
    """Cycles of a run that kept every one of ``multipliers`` (PEs x lanes) busy with useful MACs."""
    return -(-useful_macs(layer) // multipliers)


def utilization(layer: Layer, multipliers: int, cycles: int) -> float:
    """Useful MACs / (``multipliers`` x cycles): at most 1 when ``multipliers`` counts every lane."""
    return useful_macs(layer) / (multipliers * cycles) if cycles else 0.0


def lane_utilization(layer: Layer, cfg, counters: dict[str, int]) -> float:
    """Useful MACs / (MAC cycles x lanes x PEs) of a run (BRIEF §5): how full the issuing cycles' lanes
    were. With one lane it is the utilization of the MAC cycles alone."""
    slots = counters["mac_cycles"] * cfg.multipliers
    return useful_macs(layer) / slots if slots else 0.0


BOUNDS = {"mac": "mac_cycles", "loader": "load_stall_cycles", "drain": "drain_stall_cycles"}
"""What can bound a run, and the counter of the sequencer's cycles spent on it: issuing MACs, waiting
for the loader's window, waiting for the drain to take the accumulators."""


def bound(counters: dict[str, int]) -> str:
    """``mac``, ``loader`` or ``drain``: where the compute sequencer spent most of a run's cycles. A feed
    too narrow for the lanes shows as ``loader`` (or ``drain``): more lanes would not make it faster,
    a wider ``--act-lanes``/``--act-rows`` (or ``--drain-lanes``) would."""
    return max(BOUNDS, key=lambda k: counters[BOUNDS[k]])


def ops_saved(layer: Layer) -> float:
    return 1.0 - useful_macs(layer) / dense_macs(layer)


def storage_bits(enc: EncodedLayer) -> dict[str, int]:
    """Bits the encoded weights occupy: values and index, by buffer."""
    cfg = enc.cfg
    return {"weight_bits": len(enc.weight) * cfg.weight_word_bits,
            "index_bits": len(enc.chan_index) * cfg.chan_index_bits + len(enc.unit_index) * cfg.unit_index_bits}


def compression_ratio(enc: EncodedLayer) -> float:
    dense_bits = enc.layer.weights.size * enc.cfg.weight_bits
    st = storage_bits(enc)
    return dense_bits / (st["weight_bits"] + st["index_bits"])


def memory_references(enc: EncodedLayer, counters: dict[str, int]) -> dict[str, int]:
    """Buffer reads and output writes of one run (counter values), in words and in bits."""
    cfg = enc.cfg
    words = {k: counters[k] for k in ("act_reads", "weight_reads", "index_reads", "output_writes")}
    # the index reads mix channel-index and unit-index words; split them by what the schedule reads
    n_unit = sum(u for ents in enc.entries for _, u, _ in ents) * enc.tiles_y * enc.tiles_x
    n_chan = counters["index_reads"] - (n_unit if cfg.has_index else 0)
    index_bits = (n_chan * cfg.chan_index_bits + n_unit * cfg.unit_index_bits) if cfg.has_index else 0
    bits = {"act_reads": words["act_reads"] * cfg.act_bits, "weight_reads": words["weight_reads"] * cfg.weight_bits,
            "index_reads": index_bits, "output_writes": words["output_writes"] * cfg.acc_bits}
    return {"words": sum(words.values()), "bits": sum(bits.values()),
            **{f"{k}_words": v for k, v in words.items()}, **{f"{k}_bits": v for k, v in bits.items()}}
