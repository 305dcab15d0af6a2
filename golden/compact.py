"""Compaction of filter- and channel-pruned layers into the smaller dense layer they really are.

Filter pruning (SSL's filter-wise, Anwar's feature-map pruning) and channel pruning do not need an
index: a user simply builds the smaller layer. ``compact`` does that (dropping all-zero filters and
the input channels no filter reads), and ``expand_outputs`` puts the compact layer's outputs back in
place (a pruned filter's output is 0), so the result can be compared with the original layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layer import Layer


@dataclass(frozen=True)
class Compacted:
    layer: Layer  # the smaller layer
    filters: np.ndarray  # original index of each kept filter
    channels: np.ndarray  # original index of each kept input channel
    m: int  # the original number of filters


def compact(layer: Layer) -> Compacted:
    """Drop all-zero filters and input channels; keeps at least one of each so the layer stays valid."""
    w = layer.weights
    filters = np.flatnonzero(np.any(w != 0, axis=(1, 2, 3)))
    channels = np.flatnonzero(np.any(w != 0, axis=(0, 2, 3)))
    filters = filters if filters.size else np.array([0])
    channels = channels if channels.size else np.array([0])
    small = Layer(w[filters][:, channels], layer.activations[channels], layer.stride, layer.padding)
    return Compacted(small, filters, channels, layer.m)


def expand_outputs(c: Compacted, outputs: np.ndarray) -> np.ndarray:
    """Outputs ``(M_kept, E, F)`` of the compact layer → ``(M, E, F)`` of the original (pruned filters → 0)."""
    full = np.zeros((c.m,) + outputs.shape[1:], dtype=outputs.dtype)
    full[c.filters] = outputs
    # a kept placeholder filter of an all-zero layer is all zero, so writing it back is harmless
    return full
