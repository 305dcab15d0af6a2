"""Memory images the array loads, one encoder per dataflow.

The array works on one *filter group* (``acc_depth`` filters) at a time. For each group the
sequencer walks a list of **channel entries** ``(c, nk)``: input channel ``c`` and the ``nk`` kernels
of that channel it schedules, each kernel being ``R*S`` consecutive weights. The dataflows differ
only in how that list and the kernel slots are stored:

``dense``
    no index at all: every channel, every filter slot, every position (counters in hardware).
``kernel``
    a *channel index* (per group: a header word ``n`` then ``n`` entries ``(c, nk)`` for the
    channels with at least one non-zero kernel) and a *kernel index* (the filter slot of each
    scheduled kernel). All-zero kernels are never scheduled and a channel with no non-zero kernel
    in the group is never loaded.

Word formats (``ArrayConfig`` gives the widths): channel-index word = ``c | count << chan_bits``
(a header uses the count field for ``n``), kernel-index word = slot, weight word and activation
word = the two's-complement value. Activations are stored ``[c][y][x]`` without padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import ArrayConfig
from .layer import Layer

LOAD_TARGETS = {"act": 0, "weight": 1, "chan_index": 2, "kernel_index": 3}
"""Load-stream target codes: which buffer a load word is written to."""


@dataclass(frozen=True)
class EncodedLayer:
    """Everything the array needs for one layer, plus the schedule the golden model times.

    ``entries[g]`` is the channel-entry list of filter group ``g`` (the schedule); the images are the
    exact words loaded into each buffer, in load order.
    """

    cfg: ArrayConfig
    layer: Layer
    entries: list[list[tuple[int, int]]]
    act: list[int]
    weight: list[int]
    chan_index: list[int] = field(default_factory=list)
    kernel_index: list[int] = field(default_factory=list)

    @property
    def groups(self) -> int:
        return len(self.entries)

    def group_filters(self, g: int) -> int:
        """Filters in group ``g`` (the last group may be partial)."""
        return min(self.cfg.acc_depth, self.layer.m - g * self.cfg.acc_depth)

    @property
    def tiles_y(self) -> int:
        return -(-self.layer.e // self.cfg.rows)

    @property
    def tiles_x(self) -> int:
        return -(-self.layer.f // self.cfg.cols)

    def runtime_config(self) -> dict[str, int]:
        """Values of the array's configuration struct for this layer (names match the RTL fields)."""
        ly = self.layer
        return dict(c=ly.c, h=ly.h, w=ly.w, m=ly.m, r=ly.r, s=ly.s, stride=ly.stride, pad=ly.padding,
                    e=ly.e, f=ly.f, tiles_y=self.tiles_y, tiles_x=self.tiles_x, groups=self.groups)

    def images(self) -> dict[str, list[int]]:
        """Load images by target name, only those this dataflow has."""
        imgs = {"act": self.act, "weight": self.weight}
        if self.cfg.has_index:
            imgs.update(chan_index=self.chan_index, kernel_index=self.kernel_index)
        return imgs


def encode(layer: Layer, cfg: ArrayConfig) -> EncodedLayer:
    """Encode ``layer`` for ``cfg.dataflow``; raises ``ValueError`` if it does not fit ``cfg``."""
    layer.check_fits(cfg)
    w = np.asarray(layer.weights, dtype=np.int64)
    a = [int(v) for v in np.asarray(layer.activations, dtype=np.int64).reshape(-1)]
    entries: list[list[tuple[int, int]]] = []
    weight: list[int] = []
    chan_index: list[int] = []
    kernel_index: list[int] = []
    A = cfg.acc_depth
    for g in range(-(-layer.m // A)):
        wg = w[g * A:(g + 1) * A]
        if cfg.dataflow == "dense":
            slots_per_c = [list(range(wg.shape[0])) for _ in range(layer.c)]
        else:
            nonzero = np.any(wg != 0, axis=(2, 3))  # (M_g, C)
            slots_per_c = [list(np.flatnonzero(nonzero[:, c])) for c in range(layer.c)]
        ent = [(c, len(sl)) for c, sl in enumerate(slots_per_c) if sl]
        entries.append(ent)
        chan_index.append(len(ent) << cfg.chan_bits)
        for c, _ in ent:
            sl = slots_per_c[c]
            chan_index.append(c | (len(sl) << cfg.chan_bits))
            kernel_index.extend(int(x) for x in sl)
            for slot in sl:
                weight.extend(int(v) for v in wg[slot, c].reshape(-1))
    enc = EncodedLayer(cfg, layer, entries, a, weight,
                       chan_index if cfg.has_index else [], kernel_index if cfg.has_index else [])
    _check_depth("weights", len(weight), cfg.weight_depth, "--weight-depth")
    if cfg.has_index:
        _check_depth("channel index", len(chan_index), cfg.index_depth, "--index-depth")
        _check_depth("kernel index", len(kernel_index), cfg.index_depth, "--index-depth")
    return enc


def _check_depth(what: str, words: int, depth: int, flag: str) -> None:
    if words > depth:
        raise ValueError(f"{what} need {words} words but the buffer holds {depth}; "
                         f"regenerate with {flag} {words} or prune harder")
