"""Layers larger than the buffers, run as passes that each fit: filter chunks and bands of output rows.

A **pass** is a layer the array runs as it is (``golden.layer.Layer``): filters ``[m0, m1)`` of the
layer over output rows ``[e0, e1)``, every input channel. The host loads its activations and weights,
runs it, reads its outputs back and places them at ``out[m0:m1, e0:e1, :]``; no pass adds to another's
outputs, so the layer's result is exact by construction and each pass is predicted exactly by
``golden.timing.simulate`` on its own encoding (the layer's cycles are the sum).

* **Filter chunks** are multiples of ``acc_depth`` filters (whole filter groups, so a chunk's groups
  are the ones the layer would have), or all ``M``. Each chunk's weight and index images must fit their
  buffers; they are counted exactly (``golden.encode.image_words``), since they depend on the weights.
* **Bands** of output rows: a band of ``e`` rows needs input rows ``[e0*stride - pad, (e1-1)*stride
  - pad + R)`` (the halo: ``R - stride`` rows shared with the next band). The array pads every side of
  its input alike (one run-time ``padding``), so a band of a padded layer carries its padding as zeros:
  the band's rows are cut from the zero-padded input and run with padding 0. That costs
  ``2*pad`` columns of zeros per loaded row (transferred and, being inside the window, read); a pass
  over all rows keeps the layer's own padding and costs nothing extra.
* **Not built yet: channel chunks.** A layer whose single output row needs more activation words than
  the buffer holds (``C * R * (W + 2*pad) > act_depth``) needs its input channels split, which needs
  the array to start its accumulators from partial sums (issue 14, part 2); :func:`plan` says so and
  names the buffer depth that would run the layer.

**The planner's rule** (:func:`plan`): among every filter-chunk size and band height whose passes all
fit, take the one that transfers the fewest words between host and array (activations + weights +
index, once per pass; the outputs are the same for every plan), then the fewest passes, then the
tallest bands. Activations are loaded once per (band, filter chunk) pair and weights once per pair
too, so the two splits trade against each other, and the search is exhaustive over both (at most
``ceil(M / acc_depth) * E`` candidates, each a sum of counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .config import ArrayConfig
from .encode import image_words
from .layer import Layer


@dataclass(frozen=True)
class Pass:
    """Filters ``[m0, m1)`` over output rows ``[e0, e1)``: :attr:`layer` is what the array runs."""

    m0: int
    m1: int
    e0: int
    e1: int
    layer: Layer


@dataclass(frozen=True)
class Plan:
    """The passes of ``layer`` on an array built with ``cfg``, filter chunk outer, band inner."""

    layer: Layer
    cfg: ArrayConfig
    chunk: int  # filters per chunk (the last may have fewer)
    band: int  # output rows per band (the last may have fewer)
    transfer_words: int  # activation, weight and index words loaded over all passes

    @cached_property
    def passes(self) -> list[Pass]:
        ly = self.layer
        return [Pass(m0, min(m0 + self.chunk, ly.m), e0, min(e0 + self.band, ly.e),
                     band_layer(ly, m0, min(m0 + self.chunk, ly.m), e0, min(e0 + self.band, ly.e)))
                for m0 in range(0, ly.m, self.chunk) for e0 in range(0, ly.e, self.band)]

    def assemble(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The layer's ``(M, E, F)`` outputs from the passes' outputs (in :attr:`passes` order)."""
        if len(outputs) != len(self.passes):
            raise ValueError(f"got {len(outputs)} pass outputs for a plan of {len(self.passes)} passes")
        ly = self.layer
        out = np.zeros((ly.m, ly.e, ly.f), dtype=np.int64)
        for p, o in zip(self.passes, outputs, strict=True):
            want = (p.m1 - p.m0, p.e1 - p.e0, ly.f)
            if tuple(np.shape(o)) != want:
                raise ValueError(f"pass m[{p.m0}:{p.m1}] e[{p.e0}:{p.e1}] output has shape {np.shape(o)}, "
                                 f"not {want}")
            out[p.m0:p.m1, p.e0:p.e1, :] = o
        return out


def band_layer(layer: Layer, m0: int, m1: int, e0: int, e1: int) -> Layer:
    """The layer of filters ``[m0, m1)`` and output rows ``[e0, e1)`` (see the module docstring: a
    band of a padded layer is cut from the zero-padded input and run with padding 0)."""
    ly = layer
    w = ly.weights[m0:m1]
    if e0 == 0 and e1 == ly.e:
        return Layer(w, ly.activations, ly.stride, ly.padding)
    p = ly.padding
    padded = np.pad(ly.activations, ((0, 0), (p, p), (p, p))) if p else ly.activations
    rows = padded[:, e0 * ly.stride:e0 * ly.stride + _input_rows(ly, e1 - e0), :]
    return Layer(w, np.ascontiguousarray(rows), ly.stride, 0)


def _input_rows(layer: Layer, rows: int) -> int:
    """Padded input rows under ``rows`` output rows (the band and its halo)."""
    return (rows - 1) * layer.stride + layer.r


def _band_words(layer: Layer, band: int) -> int:
    """Activation words of the tallest band of ``band`` output rows."""
    ly = layer
    if band >= ly.e:
        return ly.c * ly.h * ly.w
    return ly.c * _input_rows(ly, band) * (ly.w + 2 * ly.padding)


def _act_transfer(layer: Layer, band: int) -> int:
    """Activation words of all bands of ``band`` rows (halos loaded again by each band)."""
    ly = layer
    if band >= ly.e:
        return ly.c * ly.h * ly.w
    rows = sum(_input_rows(ly, min(e0 + band, ly.e) - e0) for e0 in range(0, ly.e, band))
    return ly.c * rows * (ly.w + 2 * ly.padding)


def plan(layer: Layer, cfg: ArrayConfig) -> Plan:
    """The passes that run ``layer`` on ``cfg`` with the fewest transferred words (module docstring).

    Raises ``ValueError`` (one line) if no split fits: a kernel, stride or value range the array cannot
    run at all, or a layer that needs channel chunks.
    """
    problems = [(flag, text) for flag, text in layer.fit_problems(cfg) if flag not in ("--act-depth", "--out-depth")]
    if problems:
        raise ValueError("; ".join(text for _, text in problems))
    ly = layer
    if _band_words(ly, 1) > cfg.act_depth:
        need = _band_words(ly, 1)
        raise ValueError(f"one output row needs {need} activation words (C={ly.c} channels of {ly.r} input rows) "
                         f"but act_depth is {cfg.act_depth}: splitting input channels needs partial sums in the "
                         f"array, which are not built yet (regenerate with --act-depth {need})")
    A = cfg.acc_depth
    chunks = sorted({ly.m, *range(A, ly.m, A)}, reverse=True)
    best: tuple | None = None
    refused: list[str] = []
    for chunk in chunks:
        images = [image_words(ly.weights[m0:m0 + chunk], ly.s, cfg) for m0 in range(0, ly.m, chunk)]
        over = [(w, ci, ui) for w, ci, ui in images
                if w > cfg.weight_depth or max(ci, ui) > cfg.index_depth]
        if over:
            w, ci, ui = max(over)
            refused.append(f"{chunk} filters need {w} weight words and {max(ci, ui)} index words")
            continue
        n_chunks = len(images)
        weight_words = sum(w + ci + ui for w, ci, ui in images)
        for band in range(ly.e, 0, -1):
            if _band_words(ly, band) > cfg.act_depth or chunk * band * ly.f > cfg.out_depth:
                continue
            n_bands = -(-ly.e // band)
            transfer = n_chunks * _act_transfer(ly, band) + n_bands * weight_words
            key = (transfer, n_chunks * n_bands, -band)
            if best is None or key < best[0]:
                best = (key, chunk, band, transfer)
    if best is None:
        detail = f" ({refused[-1]}; weight_depth {cfg.weight_depth}, index_depth {cfg.index_depth})" if refused else ""
        raise ValueError(f"no split of the layer into filter chunks of acc_depth={A} and bands of output rows fits "
                         f"the buffers{detail}: regenerate with larger buffers or a smaller acc_depth")
    _, chunk, band, transfer = best
    return Plan(layer, cfg, chunk, band, transfer)
