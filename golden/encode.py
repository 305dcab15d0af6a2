"""Memory images the array loads, one schedule per dataflow.

The array works on one *filter group* (``acc_depth`` filters) at a time. For each group the
sequencer walks a list of **channel entries**: input channel ``c`` and the **units** of that channel
it schedules. A unit is a run of weights of one filter slot (see ``golden.dataflow``): a whole
kernel (``dense``, ``kernel``), a kernel at its channel's stride-pattern positions (``strided``), one
kernel row (``vector``) or one weight (``element``). What is never scheduled is never computed: a
channel with no unit in the group is not even loaded.

Images (widths from ``ArrayConfig``), in load order:

* ``act``: activations ``[c][y][x]``, no padding;
* ``weight``: the scheduled weights, unit after unit, in schedule order (no addresses needed), one word
  per MAC cycle holding the weights of its ``lanes`` lanes (:func:`pack_weights`);
* ``chan_index`` (indexed dataflows): per group a header word (``count`` = entries ``n``, ``empty`` = 1
  when ``n == 0``; layout: ``golden.words.chan_header``), then ``n`` entries ``(chan = c*H*W, count =
  units)``, the stride pattern ``(phase, step)`` added for ``strided`` (layout:
  ``golden.words.chan_word``). An entry names its
  channel by the channel's plane offset in the activation buffer, not by its number, so the loader adds
  it to the window origin without multiplying by ``H*W``; it fits the same ``chan_bits`` because the
  whole input fits the buffer (``C*H*W <= act_depth``). The header's ``empty`` bit lets the walkers
  decide to skip a group from one bit of the index memory's output instead of a ``count_bits``-wide
  compare;
* ``unit_index`` (indexed dataflows): per unit word the filter slot and, where the unit has one, its
  start row (vector) or row and column (element); with lanes, a word can name several rows or weights
  of one kernel issued in one cycle (layout: ``golden.words.unit_word``);
* ``psum``, ``bias``, ``requant`` (with an output stage): the partial sums in output order, a bias and
  a requantization word (layout: ``golden.words.requant_word``) per output channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import chunks
from .config import ArrayConfig
from .dataflow import NO_PATTERN, Dataflow, Unit, dataflow_of
from .epilogue import INIT_CODES
from .layer import Layer
from .words import chan_header, chan_word, requant_word, unit_word, weight_word


@dataclass(frozen=True)
class EncodedLayer:
    """Everything the array needs for one layer, plus the schedule the golden model times.

    ``entries[g]`` is the schedule of filter group ``g``: one ``(c, units, weights)`` per channel entry
    (``units`` = unit words, ``weights`` = scheduled positions = the MACs of a PE per tile);
    ``mac_cycles[g][k]`` is the MAC cycles of that entry per tile (``weights`` with one lane, fewer with
    several: ``golden.lanes``); the images are the exact words loaded into each buffer, in load order
    (one weight word per MAC cycle).
    """

    cfg: ArrayConfig
    layer: Layer
    entries: list[list[tuple[int, int, int]]]
    act: list[int]
    weight: list[int]
    chan_index: list[int] = field(default_factory=list)
    unit_index: list[int] = field(default_factory=list)
    mac_cycles: list[list[int]] = field(default_factory=list)
    chunks: bool = False  # the chunk mapping of output pixels (``golden.chunks``), else pixel tiles

    @property
    def groups(self) -> int:
        return len(self.entries)

    def group_filters(self, g: int) -> int:
        """Filters in group ``g`` (the last group may be partial)."""
        return min(self.cfg.acc_depth, self.layer.m - g * self.cfg.acc_depth)

    @property
    def tiles_y(self) -> int:
        """Tile rows of a filter group (the chunk mapping's tiles are one row: ``tiles_x`` of them)."""
        return 1 if self.chunks else -(-self.layer.e // self.cfg.rows)

    @property
    def tiles_x(self) -> int:
        ly = self.layer
        return chunks.tile_count(ly.e, ly.f, self.cfg) if self.chunks else -(-ly.f // self.cfg.cols)

    def runtime_config(self) -> dict[str, int]:
        """Values of the array's configuration struct for this layer (names match the RTL fields).

        Besides the dimensions it holds the products the control logic needs (``golden.words.CONFIG_FIELDS``
        says which): computed here once per layer, so no multiplier sits in the array's control logic.
        """
        ly, cfg = self.layer, self.cfg
        ystep, xstep = cfg.rows * ly.stride, cfg.cols * ly.stride
        return dict(c=ly.c, h=ly.h, w=ly.w, m=ly.m, r=ly.r, s=ly.s, stride=ly.stride, pad=ly.padding,
                    e=ly.e, f=ly.f, tiles_y=self.tiles_y, tiles_x=self.tiles_x, groups=self.groups,
                    hw=ly.h * ly.w, ef=ly.e * ly.f, th=ly.r if self.chunks else (cfg.rows - 1) * ly.stride + ly.r,
                    tw=(cfg.cols - 1) * ly.stride + ly.s, ystep=ystep, xstep=xstep, ystep_addr=ystep * ly.w,
                    pad_addr=ly.padding * ly.w + ly.padding, mg_last=self.group_filters(self.groups - 1),
                    **self._chunk_config(), **self._out_config())

    def _chunk_config(self) -> dict[str, int]:
        """The chunk mapping's fields (arrays built with ``chunks``): whether this layer runs in it, and the
        products its loader steps by: ``fst = F*stride`` (input columns of an output row), ``cst =
        cols*stride`` (of a chunk), ``wst = W*stride`` (the activation address from one output row to the next)."""
        if not self.cfg.chunks:
            return {}
        ly = self.layer
        return dict(chunks=int(self.chunks), fst=ly.f * ly.stride, cst=self.cfg.cols * ly.stride,
                    wst=ly.w * ly.stride)

    def _out_config(self) -> dict[str, int]:
        """The output stage's fields (arrays built with ``epilogue``): what the sums start from, whether
        the epilogue applies."""
        if not self.cfg.epilogue:
            return {}
        out = self.layer.out
        if out is None:
            return dict(init=INIT_CODES["zero"], requant=0, relu=0)
        return dict(init=INIT_CODES[out.init], requant=int(out.requant), relu=int(out.relu))

    def images(self) -> dict[str, list[int]]:
        """Load images by target name, only those this dataflow has."""
        imgs = {"act": self.act, "weight": self.weight}
        if self.cfg.has_index:
            imgs.update(chan_index=self.chan_index, unit_index=self.unit_index)
        out = self.layer.out
        if out is not None:  # the output stage's words (``Layer.check_fits``: only with ``epilogue``)
            if out.psum is not None:
                imgs["psum"] = [int(v) for v in out.psum.reshape(-1)]
            if out.bias is not None:
                imgs["bias"] = [int(v) for v in out.bias]
            if out.requant:
                rq = requant_word()
                imgs["requant"] = [rq.pack(mult=mu, shift=sh) for mu, sh in zip(out.mult, out.shift, strict=True)]
        return imgs


def stride_pattern(kernels: np.ndarray) -> tuple[int, int]:
    """Smallest strided pattern ``(sigma, phi)`` holding every non-zero position of ``kernels`` (N, R, S).

    Positions are flattened ``k = r*S + s``; kept iff ``k % sigma == phi``. Any tensor has one
    (``sigma = 1`` keeps everything); among those that fit, the one keeping fewest positions wins, so
    a channel pruned by ``golden.prune(..., "strided")`` gets back exactly its pattern.
    """
    rs = kernels.shape[1] * kernels.shape[2]
    used = np.flatnonzero(np.any(kernels.reshape(-1, rs) != 0, axis=0))
    best = NO_PATTERN
    best_count = rs
    for sigma in range(2, rs + 1):
        for phi in range(sigma):
            if np.all(used % sigma == phi):
                count = len(range(phi, rs, sigma))
                if count < best_count:
                    best, best_count = (sigma, phi), count
    return best


def _units(df: Dataflow, wgc: np.ndarray, pattern: tuple[int, int]) -> list[tuple[int, int, int, list]]:
    """Units ``(slot, r0, s0, positions)`` of one channel in one group (``wgc``: M_g x R x S)."""
    mg, r, s = wgc.shape
    keep = (lambda part: np.any(part)) if df.skips_zero_units else (lambda part: True)
    units = []
    for slot in range(mg):
        k = wgc[slot]
        if df.unit is Unit.KERNEL and keep(k):
            sigma, phi = pattern
            units.append((slot, 0, 0, [divmod(p, s) for p in range(phi, r * s, sigma)]))
        elif df.unit is Unit.ROW:
            units += [(slot, i, 0, [(i, j) for j in range(s)]) for i in range(r) if keep(k[i])]
        elif df.unit is Unit.SINGLE:
            units += [(slot, i, j, [(i, j)]) for i in range(r) for j in range(s) if keep(k[i, j])]
    return units


Issue = tuple[int, dict[str, int], list[list[tuple[int, int]]]]
"""One unit word as the array issues it: ``(slot, position fields, cycles)``; ``cycles`` lists, per
MAC cycle, the ``(r, s)`` of each active lane in lane order."""


def _issues(df: Dataflow, units: list[tuple[int, int, int, list]], s: int, lanes: int) -> list[Issue]:
    """The unit words of one channel in one group with ``lanes`` lanes per PE (``golden.lanes`` states
    the rule; this builds it): a kernel unit's positions ``lanes`` at a time; a row unit's columns
    ``lanes`` at a time when ``lanes < S``, else up to ``floor(lanes/S)`` rows of one kernel per word
    and cycle, row ``g`` on lanes ``g*S .. g*S+S-1``; up to ``lanes`` single weights of one kernel per
    word and cycle. With one lane every unit is one word, as :func:`_units` lists them."""
    def chunks(items: list, n: int) -> list[list]:
        return [items[i:i + n] for i in range(0, len(items), n)]

    def by_slot() -> list[list]:
        runs: list[list] = []
        for u in units:
            if runs and runs[-1][0][0] == u[0]:
                runs[-1].append(u)
            else:
                runs.append([u])
        return runs

    per_word = lanes // s if df.unit is Unit.ROW else lanes
    if df.unit is Unit.KERNEL or (df.unit is Unit.ROW and per_word == 0):
        return [(slot, {"count": 1, "r0": r0, "s0": s0}, chunks(positions, lanes))
                for slot, r0, s0, positions in units]
    issues = []
    for run in by_slot():
        for group in chunks(run, per_word):
            fields = {"count": len(group)}
            for g, (_, r0, s0, _) in enumerate(group):
                fields.update({f"r{g}": r0, f"s{g}": s0})
            issues.append((group[0][0], fields, [[p for u in group for p in u[3]]]))
    return issues


def _unit_fields(cfg: ArrayConfig, fields: dict[str, int]) -> dict[str, int]:
    """The subset of ``fields`` the unit word of ``cfg`` has (``golden.words.unit_word``)."""
    names = set(unit_word(cfg).names)
    return {n: v for n, v in fields.items() if n in names}


def pack_weights(cfg: ArrayConfig, weights: list[int]) -> int:
    """One weight-buffer word (``golden.words.weight_word``): ``weights`` on lanes ``0, 1, ...``, idle
    lanes 0. With one lane the word is the weight, so the image keeps it signed, as the weight itself."""
    if cfg.lanes == 1:  # the weight itself (the layer's check bounded it to weight_bits): one per MAC cycle
        (weight,) = weights
        return int(weight)
    return weight_word(cfg).pack(**{f"lane{lane}": w for lane, w in enumerate(weights)})


MAPPINGS = ("tile", "chunks")
"""How output pixels map to PEs: pixel tiles, or PE-row chunks in raster order (``golden.chunks``)."""


def encode(layer: Layer, cfg: ArrayConfig, mapping: str | None = None) -> EncodedLayer:
    """Encode ``layer`` for ``cfg.dataflow``; raises ``ValueError`` if it does not fit ``cfg``: one line
    naming every limit it breaks (see :func:`_check_fits`).

    ``mapping`` (:data:`MAPPINGS`): how output pixels map to PEs; by default the faster by the cycle model
    where the array has the chunk mapping and the layer can use it (``golden.chunks.usable``), else tiles."""
    if mapping not in (None, *MAPPINGS):
        raise ValueError(f"unknown mapping {mapping!r}: choose one of {', '.join(MAPPINGS)}")
    if mapping == "chunks" and not chunks.usable(layer.f, cfg):
        why = ("the array is built without it (regenerate with --chunks 1)" if not cfg.chunks else
               f"the output is {layer.f} wide, less than the array's {cfg.cols} columns")
        raise ValueError(f"the layer cannot run in the chunk mapping: {why}")
    _check_fits(layer, cfg)
    w = np.asarray(layer.weights, dtype=np.int64)
    a = [int(v) for v in np.asarray(layer.activations, dtype=np.int64).reshape(-1)]
    df = dataflow_of(cfg.dataflow)
    cw, uw, hw = chan_word(cfg), unit_word(cfg), chan_header(cfg)
    patterns = [stride_pattern(w[:, c]) if df.pattern else NO_PATTERN for c in range(layer.c)]
    entries: list[list[tuple[int, int, int]]] = []
    mac_cycles: list[list[int]] = []
    weight: list[int] = []
    chan_index: list[int] = []
    unit_index: list[int] = []
    A = cfg.acc_depth
    for g in range(-(-layer.m // A)):
        wg = w[g * A:(g + 1) * A]
        ent, cyc = [], []
        words = []
        for c in range(layer.c):
            issues = _issues(df, _units(df, wg[:, c], patterns[c]), layer.s, cfg.lanes)
            if not issues:
                continue
            ent.append((c, len(issues), sum(len(lanes) for _, _, cycles in issues for lanes in cycles)))
            cyc.append(sum(len(cycles) for _, _, cycles in issues))
            # the channel by its plane offset: < act_depth <= 2**chan_bits (check_fits)
            fields = dict(chan=c * layer.h * layer.w, count=len(issues))
            if df.pattern:
                sigma, phi = patterns[c]
                step_r, step_s = divmod(sigma, layer.s)
                phase_r, phase_s = divmod(phi, layer.s)
                fields.update(phase_r=phase_r, phase_s=phase_s, step_r=step_r, step_s=step_s)
            words.append(cw.pack(**fields))
            for slot, positions, cycles in issues:
                unit_index.append(uw.pack(slot=slot, **_unit_fields(cfg, positions)))
                weight.extend(pack_weights(cfg, [wg[slot, c, i, j] for i, j in lanes]) for lanes in cycles)
        entries.append(ent)
        mac_cycles.append(cyc)
        chan_index += [hw.pack(empty=int(not ent), count=len(ent))] + words
    if not df.indexed:
        chan_index, unit_index = [], []
    enc = EncodedLayer(cfg, layer, entries, a, weight, chan_index, unit_index, mac_cycles)
    _check_depth(cfg, len(weight), len(chan_index), len(unit_index))
    return pick_mapping(enc, mapping)


def pick_mapping(enc: EncodedLayer, mapping: str | None = None) -> EncodedLayer:
    """``enc`` in ``mapping`` (:data:`MAPPINGS`), by default in the chunk mapping where the array has it, the
    layer can use it (``golden.chunks.usable``) and the cycle model says it is faster (ties: tiles)."""
    if mapping == "tile" or enc.chunks or not chunks.usable(enc.layer.f, enc.cfg):
        return enc
    chunked = replace(enc, chunks=True)
    if mapping == "chunks":
        return chunked
    from .timing import cycles  # the timing model times encoded layers: imported here, not at the top
    return chunked if cycles(chunked) < cycles(enc) else enc


def _check_fits(layer: Layer, cfg: ArrayConfig) -> None:
    """Raise ``ValueError`` naming ALL the limits ``layer`` breaks, before any image is built.

    If ``Layer.fit_problems`` finds something, the image sizes are counted by :func:`_image_words` (which
    packs no index word, so a field too narrow for the oversized layer cannot fail first) and everything is
    raised in one line; a kernel larger than ``max_kernel`` is reported without them (no schedule is built
    for a kernel the array cannot run, and a huge kernel is slow to search for stride patterns). A layer
    that passes is encoded, then its images are checked by :func:`_check_depth`.
    """
    problems = layer.fit_problems(cfg)
    if not problems:
        return
    texts = [text for _, text in problems]
    if all(flag != "--max-kernel" for flag, _ in problems):
        texts += _depth_problems(cfg, *_image_words(layer, cfg))
    raise ValueError("; ".join(texts))


def _image_words(layer: Layer, cfg: ArrayConfig) -> tuple[int, int, int]:
    return image_words(layer.weights, layer.s, cfg)


def image_words(weights: np.ndarray, s: int, cfg: ArrayConfig) -> tuple[int, int, int]:
    """Words of the weight image (one per MAC cycle), the channel index and the unit index
    :func:`encode` would build for ``weights`` ``(M, C, R, S)`` (they do not depend on the activations;
    ``golden.passes`` sizes filter chunks with them, through :class:`ImageWords`)."""
    w = np.asarray(weights, dtype=np.int64)
    return ImageWords(w, s, cfg)(0, w.shape[0], 0, w.shape[1])


class ImageWords:
    """:func:`image_words` of any chunk ``weights[m0:m1, c0:c1]`` of one layer (``m0`` a multiple of
    ``acc_depth``), from counts per (filter group, channel) computed once each.

    A chunk's images are sums over its groups and channels (every group and channel is encoded on its
    own) plus one channel-index header word per group; only the strided pattern of a channel depends on
    the chunk (it is chosen over the chunk's filters), so the counts are kept per pattern. The pass
    planner asks for many overlapping chunks: this makes each cell's (Python-level) encoding happen
    once instead of once per candidate split.
    """

    def __init__(self, weights: np.ndarray, s: int, cfg: ArrayConfig):
        self.w, self.s, self.cfg = np.asarray(weights, dtype=np.int64), s, cfg
        self.df = dataflow_of(cfg.dataflow)
        self._cells: dict[tuple[int, int, tuple[int, int]], tuple[int, int, int]] = {}

    def _cell(self, g: int, c: int, pattern: tuple[int, int]) -> tuple[int, int, int]:
        key = (g, c, pattern)
        if key not in self._cells:
            A = self.cfg.acc_depth
            issues = _issues(self.df, _units(self.df, self.w[g * A:(g + 1) * A, c], pattern), self.s, self.cfg.lanes)
            self._cells[key] = (sum(len(cycles) for _, _, cycles in issues), int(bool(issues)), len(issues))
        return self._cells[key]

    def __call__(self, m0: int, m1: int, c0: int, c1: int) -> tuple[int, int, int]:
        A = self.cfg.acc_depth
        if m0 % A or (m1 % A and m1 != self.w.shape[0]):
            raise ValueError(f"a filter chunk is whole filter groups of {A} (or ends with the layer), not [{m0}, {m1})")
        groups = range(m0 // A, -(-m1 // A))
        weights = entries = units = 0
        for c in range(c0, c1):
            pattern = stride_pattern(self.w[m0:m1, c]) if self.df.pattern else NO_PATTERN
            for g in groups:
                part = self._cell(g, c, pattern)
                weights, entries, units = weights + part[0], entries + part[1], units + part[2]
        if not self.df.indexed:
            return weights, 0, 0
        return weights, len(groups) + entries, units


def _depth_problems(cfg: ArrayConfig, weight: int, chan_index: int, unit_index: int) -> list[str]:
    """One phrase per image that overflows its buffer (both index images share ``--index-depth``, so each
    names the depth that holds both)."""
    index = max(chan_index, unit_index)
    problems = []
    for what, words, depth, flag, fix in (("the weight image", weight, cfg.weight_depth, "--weight-depth", weight),
                                          ("the channel index", chan_index, cfg.index_depth, "--index-depth", index),
                                          ("the unit index", unit_index, cfg.index_depth, "--index-depth", index)):
        if words > depth:
            problems.append(f"{what} needs {words} words but the buffer holds {depth} "
                            f"(regenerate with {flag} {fix} or prune harder)")
    return problems


def _check_depth(cfg: ArrayConfig, weight: int, chan_index: int, unit_index: int) -> None:
    """Raise ``ValueError`` naming every image (of a layer that passed ``check_fits``) too big for its buffer."""
    problems = _depth_problems(cfg, weight, chan_index, unit_index)
    if problems:
        raise ValueError("; ".join(problems))
