"""Layers larger than the buffers, run as passes that each fit: filter chunks, bands of output rows and
channel chunks.

A **pass** is a layer the array runs as it is (``golden.layer.Layer``): filters ``[m0, m1)`` of the
layer over output rows ``[e0, e1)`` and input channels ``[c0, c1)``. The host loads its activations and
weights, runs it, reads its outputs back and places them at ``out[m0:m1, e0:e1, :]``. Each pass is
predicted exactly by ``golden.timing.simulate`` on its own encoding (the layer's cycles are the sum).

* **Filter chunks** are multiples of ``acc_depth`` filters (whole filter groups, so a chunk's groups
  are the ones the layer would have), or all ``M``; with a bias or requantization at most
  ``param_depth``. Each chunk's weight and index images must fit their buffers; they are counted
  exactly (``golden.encode.ImageWords``), since they depend on the weights.
* **Bands** of output rows: a band of ``e`` rows needs input rows ``[e0*stride - pad, (e1-1)*stride
  - pad + R)`` (the halo: ``R - stride`` rows shared with the next band). The array pads every side of
  its input alike (one run-time ``padding``), so a band of a padded layer carries its padding as zeros:
  the band's rows are cut from the zero-padded input and run with padding 0. That costs
  ``2*pad`` columns of zeros per loaded row (transferred and, being inside the window, read); a pass
  over all rows keeps the layer's own padding and costs nothing extra.
* **Channel chunks**, only when one output row of all input channels does not fit the activation
  buffer (``C * R * (W + 2*pad) > act_depth``), and only on arrays with the output stage
  (``--epilogue 1``): as few chunks as fit, of equal size. The chunks of a (filter chunk, band) run one
  after the other; the first starts from the layer's bias (or zero), each later one from the partial
  sums of the chunks before it (``psum``, loaded into the output buffer: the array adds them,
  ``hdl.epilogue``), and only the last applies the layer's requantization and ReLU. A pass's partial
  sums are the golden model's, so every pass is checked, and can run, on its own; a board run feeds
  each chunk the array's own outputs of the chunk before, which are the same when the array is exact.

**A 1x1 layer with stride s > 1** reads one input pixel in ``s*s``: it runs as the same layer at stride
1 on those pixels (:func:`subsampled`; the host sends only them). Its outputs are the layer's, bit for
bit, and its window is ``rows x cols`` instead of ``((rows-1)*s + 1) x ((cols-1)*s + 1)``, so loading a
channel no longer takes longer than computing it: a ResNet projection (1x1, stride 2) at 75 % kernel
sparsity was bound by the loader (1.10x over dense on the default array, issue 24). It also runs on an
array whose ``max_stride`` is below ``s``.

**The planner's rule** (:func:`plan`): the fewest channel chunks that fit (as above); then among
every filter-chunk size and band height whose passes all fit, the one with the fewest **tile rows**
(``sum over bands of ceil(band / rows)``: a band that is not a multiple of the
PE rows leaves PE rows idle in its last tile row, and the compute of every pass is proportional to
its tile rows, whatever the filter chunks), then the one that transfers the fewest words between
host and array (activations, weights, index, partial sums and output-stage parameters, once per pass;
the outputs are the same for every plan), then the fewest passes, then the tallest bands.
Activations are loaded once per (band, filter chunk) pair and weights once per pair too, so the two
splits trade against each other, and the search is exhaustive over both (at most
``ceil(M / acc_depth) * E`` candidates, each a sum of counts). (Measured: with transfer first, the
full-size AlexNet conv3 at 75 % kernel sparsity took 1.75x the tile rows it needs on the default 4x4
array, `bench.sweep`.) On arrays with the output stage, more channel chunks are tried too, while the
best plan so far has more tile rows than ``ceil(E / rows)``: smaller chunks allow taller bands in the
same activation buffer, at the price of partial sums (counted in the transfer). The bands are chosen for
the tile mapping; on an array with the chunk mapping (``golden.chunks``) each pass then runs in the faster
of the two (``golden.encode.pick_mapping``), so no pass is slower than on the tiles. (Measured on the golden
model: counting a band's tiles in the mapping with fewer instead, ResNet-18's 56x56 layers took bands of 14
rows in chunks, whose per-PE-row loads made them 1.6 % slower than bands of 12 in tiles, and the study's
speedups at V = 9 fell from 3.37x to 3.24x, `bench.shapes`.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .config import ArrayConfig
from .conv import conv2d, wrap
from .encode import ImageWords, encode
from .epilogue import OutputStage
from .layer import Layer

PASS_FLAGS = ("--act-depth", "--out-depth", "--param-depth")
"""The limits of ``Layer.fit_problems`` that running in passes gets around."""


@dataclass(frozen=True)
class Pass:
    """Filters ``[m0, m1)`` over output rows ``[e0, e1)`` and input channels ``[c0, c1)``: :attr:`layer` is
    what the array runs."""

    m0: int
    m1: int
    e0: int
    e1: int
    c0: int
    c1: int
    layer: Layer


@dataclass(frozen=True)
class Plan:
    """The passes of ``layer`` on an array built with ``cfg``: filter chunk outer, then band, then
    channel chunk (a band's channel chunks run one after the other)."""

    layer: Layer
    cfg: ArrayConfig
    chunk: int  # filters per chunk (the last may have fewer)
    band: int  # output rows per band (the last may have fewer)
    transfer_words: int  # words loaded over all passes (activations, weights, index, partial sums, parameters)
    channels: int = 0  # input channels per chunk (the last may have fewer); 0: all
    subsample: int = 1  # the layer's stride, if it runs :func:`subsampled` (its ``layer`` has stride 1)

    @property
    def channel_chunk(self) -> int:
        return self.channels or self.layer.c

    @cached_property
    def passes(self) -> list[Pass]:
        ly, cc = self.layer, self.channel_chunk
        out = []
        for m0 in range(0, ly.m, self.chunk):
            m1 = min(m0 + self.chunk, ly.m)
            for e0 in range(0, ly.e, self.band):
                e1 = min(e0 + self.band, ly.e)
                for c0 in range(0, ly.c, cc):
                    c1 = min(c0 + cc, ly.c)
                    out.append(Pass(m0, m1, e0, e1, c0, c1, pass_layer(ly, self.cfg, m0, m1, e0, e1, c0, c1)))
        return out

    def assemble(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The layer's ``(M, E, F)`` outputs from the passes' outputs (in :attr:`passes` order): each
        (filter chunk, band)'s last channel chunk."""
        if len(outputs) != len(self.passes):
            raise ValueError(f"got {len(outputs)} pass outputs for a plan of {len(self.passes)} passes")
        ly = self.layer
        out = np.zeros((ly.m, ly.e, ly.f), dtype=np.int64)
        for p, o in zip(self.passes, outputs, strict=True):
            want = (p.m1 - p.m0, p.e1 - p.e0, ly.f)
            if tuple(np.shape(o)) != want:
                raise ValueError(f"pass m[{p.m0}:{p.m1}] e[{p.e0}:{p.e1}] c[{p.c0}:{p.c1}] output has shape "
                                 f"{np.shape(o)}, not {want}")
            if p.c1 == ly.c:
                out[p.m0:p.m1, p.e0:p.e1, :] = o
        return out


def band_layer(layer: Layer, m0: int, m1: int, e0: int, e1: int, c0: int = 0, c1: int | None = None) -> Layer:
    """The conv of filters ``[m0, m1)``, output rows ``[e0, e1)`` and input channels ``[c0, c1)``, without
    an output stage (see the module docstring: a band of a padded layer is cut from the zero-padded
    input and run with padding 0)."""
    ly = layer
    c1 = ly.c if c1 is None else c1
    w = ly.weights[m0:m1, c0:c1]
    acts = ly.activations[c0:c1]
    if e0 == 0 and e1 == ly.e:
        return Layer(w, acts, ly.stride, ly.padding)
    p = ly.padding
    padded = np.pad(acts, ((0, 0), (p, p), (p, p))) if p else acts
    rows = padded[:, e0 * ly.stride:e0 * ly.stride + _input_rows(ly, e1 - e0), :]
    return Layer(w, np.ascontiguousarray(rows), ly.stride, 0)


def pass_layer(layer: Layer, cfg: ArrayConfig, m0: int, m1: int, e0: int, e1: int, c0: int, c1: int) -> Layer:
    """The layer the array runs for one pass: :func:`band_layer` with its part of the layer's output
    stage (the bias or the layer's own partial sums on the first channel chunk, the golden partial sums
    of the chunks before on a later one, the requantization on the last)."""
    conv = band_layer(layer, m0, m1, e0, e1, c0, c1)
    out = layer.out or OutputStage()
    first = OutputStage(bias=None if out.bias is None else out.bias[m0:m1],
                        psum=None if out.psum is None else out.psum[m0:m1, e0:e1])
    if c0 == 0:
        stage = first
    else:  # the chunks before, with the first chunk's start, wrapped like the accumulators
        before = band_layer(layer, m0, m1, e0, e1, 0, c0)
        sums = conv2d(before.weights, before.activations, before.stride, before.padding, cfg.acc_bits)
        stage = OutputStage(psum=wrap(sums + first.base(sums.shape), cfg.acc_bits))
    if c1 == layer.c and out.requant:
        stage = replace(stage, mult=out.mult[m0:m1], shift=out.shift[m0:m1], relu=out.relu)
    empty = stage.bias is None and stage.psum is None and not stage.requant
    return conv if empty else replace(conv, out=stage)


def _input_rows(layer: Layer, rows: int) -> int:
    """Padded input rows under ``rows`` output rows (the band and its halo)."""
    return (rows - 1) * layer.stride + layer.r


def _band_words(layer: Layer, band: int, channels: int) -> int:
    """Activation words of the tallest band of ``band`` output rows of ``channels`` input channels."""
    ly = layer
    if band >= ly.e:
        return channels * ly.h * ly.w
    return channels * _input_rows(ly, band) * (ly.w + 2 * ly.padding)


def tile_rows(e: int, band: int, rows: int) -> int:
    """Tile rows of ``e`` output rows in bands of ``band`` on ``rows`` PE rows (each band's last tile row
    may be partly empty): what a pass plan's compute is proportional to."""
    return sum(-(-min(band, e - e0) // rows) for e0 in range(0, e, band))


def _act_transfer(layer: Layer, band: int) -> int:
    """Activation words of all bands of ``band`` rows (halos loaded again by each band), every channel."""
    ly = layer
    if band >= ly.e:
        return ly.c * ly.h * ly.w
    rows = sum(_input_rows(ly, min(e0 + band, ly.e) - e0) for e0 in range(0, ly.e, band))
    return ly.c * rows * (ly.w + 2 * ly.padding)


def _images_fit(layer: Layer, cfg: ArrayConfig, cc: int, images: ImageWords) -> bool:
    """Whether the weight and index images of the smallest filter chunk (one filter group) fit their
    buffers for every chunk of ``cc`` input channels (``images``: the layer's image counter)."""
    ly, f = layer, min(cfg.acc_depth, layer.m)
    for m0 in range(0, ly.m, f):
        for c0 in range(0, ly.c, cc):
            w, ci, ui = images(m0, min(m0 + f, ly.m), c0, min(c0 + cc, ly.c))
            if w > cfg.weight_depth or max(ci, ui) > cfg.index_depth:
                return False
    return True


def _channel_chunk(layer: Layer, cfg: ArrayConfig, images: ImageWords) -> int:
    """Input channels per chunk: all of them if one output row of all channels fits the activation
    buffer and one filter group's weights of all channels fit the weight and index buffers, else as
    few equal chunks as fit (``ValueError`` if the array cannot add partial sums or one channel does
    not fit either)."""
    ly = layer
    need = _band_words(ly, 1, ly.c)
    rows_fit = need <= cfg.act_depth
    if rows_fit and (_images_fit(ly, cfg, ly.c, images) or not _images_fit(ly, cfg, 1, images)):
        return ly.c  # fits, or no channel split makes the weights fit (the planner then says so)
    why = (f"one output row needs {need} activation words (C={ly.c} channels of {ly.r} input rows) but act_depth "
           f"is {cfg.act_depth}" if not rows_fit else
           f"the weights of {min(cfg.acc_depth, ly.m)} filters over C={ly.c} channels do not fit weight_depth "
           f"{cfg.weight_depth} / index_depth {cfg.index_depth}")
    if not cfg.epilogue:
        fix = f"--act-depth {need}" if not rows_fit else "larger --weight-depth/--index-depth"
        raise ValueError(f"{why}: splitting the input channels needs the output stage to add partial sums "
                         f"(regenerate with --epilogue 1, or with {fix})")
    per_channel = _band_words(ly, 1, 1)
    if per_channel > cfg.act_depth:
        raise ValueError(f"one output row of one input channel needs {per_channel} activation words but act_depth "
                         f"is {cfg.act_depth} (regenerate with --act-depth {per_channel})")
    n = -(-ly.c // (cfg.act_depth // per_channel))
    while not _images_fit(ly, cfg, -(-ly.c // n), images):
        if -(-ly.c // n) == 1:
            raise ValueError(f"the weights of one filter group of one input channel do not fit weight_depth "
                             f"{cfg.weight_depth} / index_depth {cfg.index_depth}: regenerate with larger buffers")
        n += 1
    return -(-ly.c // n)


def subsampled(layer: Layer) -> Layer:
    """``layer``, or for a 1x1 layer with stride ``s > 1`` the same conv at stride 1 on the pixels it reads
    (every ``s``-th row and column): the same outputs from ``1/s**2`` of the activations (module docstring).
    A 1x1 kernel has no padding (``Layer`` allows padding below the kernel only), so no pixel is lost."""
    s = layer.stride
    if layer.r != 1 or layer.s != 1 or s == 1:
        return layer
    return replace(layer, activations=np.ascontiguousarray(layer.activations[:, ::s, ::s]), stride=1)


def fit_or_plan(layer: Layer, cfg: ArrayConfig, *, fits: Callable[[Layer, ArrayConfig], object] = encode,
                images: type[ImageWords] = ImageWords) -> Plan | None:
    """``None`` if ``layer`` runs on ``cfg`` in one go as it is, else its passes (a 1x1 strided layer runs
    :func:`subsampled`, as a plan of one pass if it fits); ``ValueError`` (one line) if neither.

    ``fits`` is the whole layer's test (raises ``ValueError`` naming what does not fit) and ``images``
    counts a chunk's image words (:func:`plan`): ``golden.encode``'s by default; a study that only needs
    the verdicts passes cheaper equivalents (``bench.shapes`` counts the words without packing them)."""
    if subsampled(layer) is not layer:
        return plan(layer, cfg, images=images)
    def whole_error() -> ValueError:  # encode's one line naming every limit the whole layer breaks
        try:
            fits(layer, cfg)
        except ValueError as e:
            return e
        raise AssertionError("the layer fits after all")  # pragma: no cover - fit_problems said it does not

    problems = layer.fit_problems(cfg)
    if any(flag not in PASS_FLAGS for flag, _ in problems):
        raise whole_error()  # a kernel, stride or value the array cannot run at all: passes do not help
    if not problems:  # the activations and outputs fit: the images decide (counted by encode)
        try:
            fits(layer, cfg)
            return None
        except ValueError:
            pass
    try:
        return plan(layer, cfg, images=images)
    except ValueError as split:
        raise ValueError(f"{whole_error()}; it does not run in passes either: {split}") from None


def plan(layer: Layer, cfg: ArrayConfig, *, images: type[ImageWords] = ImageWords) -> Plan:
    """The passes that run ``layer`` on ``cfg``: fewest tile rows, then fewest transferred words (module
    docstring).

    Raises ``ValueError`` (one line) if no split fits: a kernel, stride or value range the array cannot
    run at all, or buffers too small for any split. The plan's :attr:`Plan.layer` is
    :func:`subsampled` ``layer``.
    """
    run = subsampled(layer)
    subsample = layer.stride if run is not layer else 1
    layer = run
    problems = [(flag, text) for flag, text in layer.fit_problems(cfg) if flag not in PASS_FLAGS]
    if problems:
        raise ValueError("; ".join(text for _, text in problems))
    ly = layer
    counter = images(ly.weights, ly.s, cfg)
    fewest = _channel_chunk(ly, cfg, counter)
    # more (smaller) channel chunks than the fewest that fit: each may allow taller bands (fewer tile
    # rows) at the price of partial sums; tried, on arrays that add partial sums, while they can help
    sizes = [fewest] + ([] if not cfg.epilogue else
                        sorted({-(-ly.c // n) for n in range(-(-ly.c // fewest) + 1, ly.c + 1)} - {fewest},
                               reverse=True))
    least = -(-ly.e // cfg.rows)  # no plan has fewer tile rows
    best: tuple | None = None
    refused: list[str] = []
    for cc in sizes:
        found = _best_split(ly, cfg, counter, cc, refused)
        if found is not None and (best is None or found[0] < best[0]):
            best = found
        if best is not None and best[0][0] == least:
            break
    if best is None:
        A = cfg.acc_depth
        detail = f" ({refused[-1]}; weight_depth {cfg.weight_depth}, index_depth {cfg.index_depth})" if refused else ""
        raise ValueError(f"no split of the layer into filter chunks of acc_depth={A} and bands of output rows fits "
                         f"the buffers{detail}: regenerate with larger buffers or a smaller acc_depth")
    _, chunk, band, transfer, cc = best
    return Plan(layer, cfg, chunk, band, transfer, 0 if cc == ly.c else cc, subsample)


def _best_split(ly: Layer, cfg: ArrayConfig, counter: ImageWords, cc: int, refused: list[str]) -> tuple | None:
    """The best (filter chunk, band) for channel chunks of ``cc``: ``(key, chunk, band, transfer, cc)``, or
    ``None`` if none fits (why, appended to ``refused``)."""
    c_starts = range(0, ly.c, cc)
    out = ly.out
    params = 0 if out is None else int(out.bias is not None) + int(out.requant)  # words per filter and band
    # the partial sums of every channel chunk after the first, for every output
    psum_words = (len(c_starts) - 1) * ly.m * ly.e * ly.f
    A = cfg.acc_depth
    chunks = sorted({ly.m, *range(A, ly.m, A)}, reverse=True)
    if params:
        chunks = [c for c in chunks if c <= cfg.param_depth]
    best: tuple | None = None
    for chunk in chunks:
        images = [counter(m0, min(m0 + chunk, ly.m), c0, min(c0 + cc, ly.c))
                  for m0 in range(0, ly.m, chunk) for c0 in c_starts]
        over = [(w, ci, ui) for w, ci, ui in images
                if w > cfg.weight_depth or max(ci, ui) > cfg.index_depth]
        if over:
            w, ci, ui = max(over)
            refused.append(f"{chunk} filters need {w} weight words and {max(ci, ui)} index words")
            continue
        n_chunks = -(-ly.m // chunk)
        weight_words = sum(w + ci + ui for w, ci, ui in images)
        for band in range(ly.e, 0, -1):
            if _band_words(ly, band, cc) > cfg.act_depth or chunk * band * ly.f > cfg.out_depth:
                continue
            n_bands = -(-ly.e // band)
            transfer = (n_chunks * _act_transfer(ly, band) + n_bands * (weight_words + params * ly.m)
                        + psum_words)
            key = (tile_rows(ly.e, band, cfg.rows), transfer, n_chunks * n_bands * len(c_starts), -band)
            if best is None or key < best[0]:
                best = (key, chunk, band, transfer, cc)
    return best
