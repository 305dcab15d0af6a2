"""Every packed word of the array, described once: its layout, and the packers that use it.

A word is named fields, least significant first (:class:`WordLayout`). The encoder packs the memory
images through these layouts (``golden.encode``); the host packs the load stream and the run's
configuration and unpacks the counters through them (:class:`Packing`, which reads them back from a
manifest); the gateware views the same bits through an Amaranth ``StructLayout`` built from each
layout (``hdl.layouts.word_struct``). No one shifts or slices a word by hand, so the packer and the
unpacker cannot disagree on a bit, and a new field is one line here.

The words of an array built with ``cfg`` (:func:`word_layouts`; ``docs/architecture.md`` holds their
table, :func:`layouts_markdown`):

* ``weight`` (:func:`weight_word`): the weights of one MAC cycle, lane ``l`` in ``lane<l>``;
* ``requant`` (:func:`requant_word`): an output channel's requantization ``mult`` and ``shift``;
* ``chan_header``, ``chan_entry`` (:func:`chan_header`, :func:`chan_word`): the channel index, a
  group's header then its entries;
* ``unit`` (:func:`unit_word`): the unit index;
* ``cfg``, ``load``, ``perf`` (:func:`config_word`, :func:`load_word`, :func:`perf_word`): the
  array's packed host ports (run-time configuration, load stream, performance counters).

This module is plain Python (``golden`` imports no Amaranth); the ``StructLayout`` conversion lives
in ``hdl.layouts``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .dataflow import bits_for, dataflow_of, unit_groups
from .epilogue import INIT_CODES, MULT_BITS, SHIFT_BITS

if TYPE_CHECKING:  # config and encode import this module
    from .config import ArrayConfig
    from .encode import EncodedLayer

RESERVED = "_"
"""Prefix of a reserved field's name: bits a word keeps so that it lines up with another word of the
same memory, which packers leave 0 and unpackers skip."""


@dataclass(frozen=True)
class WordLayout:
    """Named fields of one packed word, least significant first.

    ``fields`` are ``(name, width)`` pairs (widths >= 1); a name starting with :data:`RESERVED` is a
    reserved field. A field named in ``signed`` holds a two's complement value: :meth:`pack` takes
    ``-2**(w-1) .. 2**(w-1)-1`` and :meth:`unpack` gives it back signed. ``name`` says which word a
    packing error is about.
    """

    fields: tuple[tuple[str, int], ...]
    name: str = "word"
    signed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        names = [n for n, _ in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a field name appears twice in {names}")
        if any(w < 1 for _, w in self.fields):
            raise ValueError(f"{self.name}: every field needs a width >= 1, not {dict(self.fields)}")
        if not set(self.signed) <= set(names):
            raise ValueError(f"{self.name}: signed names no field: {sorted(set(self.signed) - set(names))}")

    @classmethod
    def of(cls, name: str, fields: list[tuple[str, int]], signed: tuple[str, ...] = ()) -> WordLayout:
        """The layout of ``fields`` without its zero-width ones (a reserved gap or a field the array's
        parameters leave empty)."""
        return cls(tuple((n, w) for n, w in fields if w > 0), name, frozenset(signed))

    @property
    def width(self) -> int:
        return sum(w for _, w in self.fields)

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """The fields a packer sets (reserved ones left out), least significant first."""
        return tuple(n for n, _ in self.fields if not n.startswith(RESERVED))

    @functools.cached_property
    def _spec(self) -> tuple[tuple[str, int, int, int, int], ...]:
        """Per field: name, width, offset and the range ``lo <= v < hi`` it takes (computed once: the
        encoder packs a word per weight)."""
        out, off = [], 0
        for n, w in self.fields:
            lo, hi = (-(1 << (w - 1)), 1 << (w - 1)) if n in self.signed else (0, 1 << w)
            out.append((n, w, off, lo, hi))
            off += w
        return tuple(out)

    def offset(self, name: str) -> int:
        off = 0
        for n, w in self.fields:
            if n == name:
                return off
            off += w
        raise KeyError(name)

    def field_width(self, name: str) -> int:
        return dict(self.fields)[name]

    def pack(self, **values: int) -> int:
        """The word holding ``values`` (missing fields are 0); ``ValueError`` if a value does not fit."""
        unknown = set(values).difference(self.names)
        if unknown:
            raise ValueError(f"no field(s) {', '.join(sorted(unknown))} in the {self.name} word")
        word = 0
        for n, w, off, lo, hi in self._spec:
            v = int(values.get(n, 0))
            if not lo <= v < hi:
                kind = "signed " if n in self.signed else ""
                raise ValueError(f"{self.name}.{n} = {v} does not fit {w} {kind}bits")
            word |= (v & ((1 << w) - 1)) << off
        return word

    def unpack(self, word: int) -> dict[str, int]:
        """The values of the fields :meth:`pack` sets (signed ones sign-extended)."""
        out, off = {}, 0
        for n, w in self.fields:
            v = (int(word) >> off) & ((1 << w) - 1)
            if not n.startswith(RESERVED):
                out[n] = to_signed(v, w) if n in self.signed else v
            off += w
        return out

    def manifest(self) -> dict[str, dict[str, int]]:
        """The fields' offsets and widths as the manifest records them (reserved ones left out)."""
        return {n: {"offset": self.offset(n), "width": w} for n, w in self.fields if not n.startswith(RESERVED)}

    @classmethod
    def from_manifest(cls, name: str, fields: dict[str, dict[str, int]]) -> WordLayout:
        """The layout :meth:`manifest` recorded (a gap between fields comes back as a reserved field)."""
        out, at = [], 0
        for n, f in sorted(fields.items(), key=lambda item: item[1]["offset"]):
            out += [(f"{RESERVED}{at}", f["offset"] - at), (n, f["width"])]
            at = f["offset"] + f["width"]
        return cls.of(name, out)


def to_signed(value: int, bits: int) -> int:
    """``value``'s low ``bits`` bits as a two's complement number."""
    value = int(value) & ((1 << bits) - 1)
    return value - (1 << bits) if value >> (bits - 1) else value


# --- the memory images' words (golden.encode packs them, hdl unpacks them) ---

def weight_word(cfg: ArrayConfig) -> WordLayout:
    """A weight-buffer word: the ``lanes`` weights of one MAC cycle, lane ``l`` in ``lane<l>``, signed."""
    return _weight_word(cfg.lanes, cfg.weight_bits)


@functools.cache
def _weight_word(lanes: int, bits: int) -> WordLayout:  # one per array: the encoder asks once per weight word
    names = [f"lane{lane}" for lane in range(lanes)]
    return WordLayout.of("weight", [(n, bits) for n in names], signed=tuple(names))


@functools.cache
def requant_word() -> WordLayout:
    """An output channel's requantization word (``golden.epilogue``): ``y * mult`` rounded and shifted
    right by ``shift``."""
    return WordLayout.of("requant", [("mult", MULT_BITS), ("shift", SHIFT_BITS)])


NO_PATTERN_FIELDS = (("phase_r", 0), ("phase_s", 0), ("step_r", 0), ("step_s", 1))
"""The stride-pattern fields of a channel entry with no pattern (``golden.dataflow.NO_PATTERN``) as the
walkers read them: the first position at ``(0, 0)``, each next one a column on (a row's end wraps to
the next row). What the decoder answers for a dataflow whose entries carry none."""

PATTERN_FIELDS = tuple(n for n, _ in NO_PATTERN_FIELDS)


@functools.lru_cache(maxsize=64)  # per array: the encoder asks per entry and unit
def chan_word(cfg: ArrayConfig) -> WordLayout:
    """A channel-index entry: the channel by its plane offset (``chan = c*H*W``), its units (``count``),
    and for a ``pattern`` dataflow its stride pattern ``phase_r, phase_s, step_r, step_s``."""
    fields = [("chan", cfg.chan_bits), ("count", cfg.count_bits)]
    if dataflow_of(cfg.dataflow).pattern:
        fields += [(n, cfg.pos_bits) for n in PATTERN_FIELDS]
    return WordLayout.of("chan_entry", fields)


@functools.lru_cache(maxsize=64)  # per array: the encoder asks per entry and unit
def chan_header(cfg: ArrayConfig) -> WordLayout:
    """A filter group's header in the channel index: ``empty`` (the group has no entry) and ``count``
    (its entries). It sits in the same memory as the entries, so it has their width and its ``count``
    their ``count``'s bits; ``empty`` is a bit of its own so that a walker decides to skip a group from
    one flip-flop instead of a ``count_bits``-wide compare."""
    entry = chan_word(cfg)
    at = entry.offset("count")
    return WordLayout.of("chan_header", [("empty", 1), (f"{RESERVED}chan", at - 1), ("count", cfg.count_bits),
                                         (f"{RESERVED}pattern", entry.width - at - cfg.count_bits)])


@functools.lru_cache(maxsize=64)  # per array: the encoder asks per entry and unit
def unit_word(cfg: ArrayConfig) -> WordLayout:
    """A unit-index word: the filter slot; with several position groups (``golden.dataflow.unit_groups``)
    how many are used (``count``); then each group's position fields (``r0, s0, r1, s1, ...``) where the
    unit has them."""
    groups = unit_groups(cfg)
    fields = [("slot", cfg.slot_bits)] + ([("count", bits_for(groups))] if groups > 1 else [])
    for g in range(groups):
        fields += [(f"{n}{g}", cfg.pos_bits) for n in dataflow_of(cfg.dataflow).unit_position]
    return WordLayout.of("unit", fields)


# --- the host interface's words (the manifest records them, Packing packs them) ---

CONFIG_FIELDS = ("c", "h", "w", "m", "r", "s", "stride", "pad", "e", "f", "tiles_y", "tiles_x", "groups",
                 "hw", "ef", "th", "tw", "ystep", "xstep", "ystep_addr", "pad_addr", "mg_last")
"""Run-time layer fields, in packing order (low bits first).

The first thirteen are the layer's dimensions and tile/group counts; the rest are products the
control logic would otherwise form at run time (``golden.encode.EncodedLayer.runtime_config``
computes them): ``hw = H*W`` (one channel plane of the activation buffer), ``ef = E*F``, the window
``th x tw = ((rows-1)*stride + R) x ((cols-1)*stride + S)``, the input rows/columns between adjacent
tiles ``ystep = rows*stride``, ``xstep = cols*stride``, the activation-address distance between
vertically adjacent tiles ``ystep_addr = ystep*W``, how far the first window's origin ``(-pad, -pad)``
lies before its plane ``pad_addr = pad*W + pad``, and the filters of the last group ``mg_last``.
With them the loader, drain and tile walker need no multiplier: everything else advances by additions.
"""

CHUNK_FIELDS = ("chunks", "fst", "cst", "wst")
"""Run-time fields after :data:`CONFIG_FIELDS` on arrays built with the chunk mapping (``golden.chunks``):
whether the layer runs in it, and the products its loader steps by
(``golden.encode.EncodedLayer.runtime_config``)."""

PERF_FIELDS = ("busy_cycles", "mac_cycles", "load_stall_cycles", "drain_cycles", "drain_stall_cycles",
               "tile_loads", "act_reads", "weight_reads", "index_reads", "output_writes")
"""Performance counters, in packing order; same names as ``golden.timing.Counters``."""

LOAD_TARGETS = {"act": 0, "weight": 1, "chan_index": 2, "unit_index": 3, "psum": 4, "bias": 5, "requant": 6}
"""Load-stream target codes: which buffer a load word is written to (the last three only with
``epilogue``: partial sums into the output buffer in output order, a bias and a requantization word
per output channel into the output stage's parameter memory)."""


def load_targets(cfg: ArrayConfig) -> dict[str, int]:
    """The targets an array built with ``cfg`` has."""
    names = ["act", "weight"] + (["chan_index", "unit_index"] if cfg.has_index else []) + \
        (["psum", "bias", "requant"] if cfg.epilogue else [])
    return {name: LOAD_TARGETS[name] for name in names}


def config_widths(cfg: ArrayConfig) -> dict[str, int]:
    """Width of every configuration field, wide enough for any layer that passes ``Layer.check_fits``.

    The bounds: ``C*H*W <= act_depth`` (so ``H*W``, ``W`` and a plane offset fit the activation
    buffer), ``M*E*F <= out_depth``, ``R, S <= max_kernel``, ``pad < max_kernel``, ``stride <= max_stride``.
    The host packs through these widths and refuses a value that does not fit (:meth:`Packing.pack`).
    """
    widths = {name: cfg.dim_bits for name in CONFIG_FIELDS}  # dimensions and counts
    widths.update(
        hw=bits_for(cfg.act_depth), ef=bits_for(cfg.out_depth),
        th=bits_for(cfg.tile_rows), tw=bits_for(cfg.tile_cols),
        ystep=bits_for(cfg.rows * cfg.max_stride), xstep=bits_for(cfg.cols * cfg.max_stride),
        ystep_addr=bits_for(cfg.rows * cfg.max_stride * cfg.act_depth),
        pad_addr=bits_for((cfg.max_kernel - 1) * (cfg.act_depth + 1)),
        mg_last=bits_for(cfg.acc_depth),
    )
    if cfg.chunks:  # the chunk mapping (``golden.encode.EncodedLayer.runtime_config``)
        widths.update(chunks=1, fst=bits_for(cfg.act_depth + 2 * cfg.max_kernel + cfg.max_stride),
                      cst=bits_for(cfg.cols * cfg.max_stride), wst=bits_for(cfg.act_depth * cfg.max_stride))
    if cfg.epilogue:  # the output stage (``golden.epilogue.INIT_CODES``)
        widths.update(init=bits_for(max(INIT_CODES.values())), requant=1, relu=1)
    return widths


def config_word(cfg: ArrayConfig) -> WordLayout:
    """The run-time layer configuration (``cfg`` port), unsigned fields (widths: :func:`config_widths`)."""
    return WordLayout.of("cfg", list(config_widths(cfg).items()))


def perf_word(cfg: ArrayConfig) -> WordLayout:
    """The counters (``perf`` port), ``cfg.perf_bits`` each (48 by default: 2**48 cycles is ~32 days at
    100 MHz)."""
    return WordLayout.of("perf", [(name, cfg.perf_bits) for name in PERF_FIELDS])


def load_word(cfg: ArrayConfig) -> WordLayout:
    """One load-stream word: the word for a buffer (``data``, as wide as the widest such word) and which
    buffer (``target``, :data:`LOAD_TARGETS`)."""
    words = [cfg.act_bits, weight_word(cfg).width]
    if cfg.has_index:
        words += [chan_word(cfg).width, unit_word(cfg).width]
    if cfg.epilogue:  # partial sums and biases, requantization words
        words += [cfg.acc_bits, requant_word().width]
    return WordLayout.of("load", [("data", max(words)), ("target", bits_for(max(load_targets(cfg).values())))])


def word_layouts(cfg: ArrayConfig) -> dict[str, WordLayout]:
    """Every packed word an array built with ``cfg`` has, by name."""
    words = {"weight": weight_word(cfg)}
    if cfg.epilogue:
        words["requant"] = requant_word()
    if cfg.has_index:
        words.update(chan_header=chan_header(cfg), chan_entry=chan_word(cfg), unit=unit_word(cfg))
    words.update(cfg=config_word(cfg), load=load_word(cfg), perf=perf_word(cfg))
    return words


def host_layouts(cfg: ArrayConfig) -> dict[str, WordLayout]:
    """The words of the array's host ports, as the manifest records them (``hdl.generate.manifest``)."""
    return {"cfg": config_word(cfg), "load": load_word(cfg), "perf": perf_word(cfg)}


@dataclass(frozen=True)
class Packing:
    """The host ports' words of one built array, read from its manifest: what every host of the array
    (Amaranth's simulator, cocotb on Verilator, the native harness, a board's driver) packs and unpacks
    through, so the packing of fields into the flat Verilog ports exists once."""

    layouts: dict[str, WordLayout]
    load_targets: dict[str, int]

    @classmethod
    def from_manifest(cls, manifest: dict) -> Packing:
        layouts = {name: WordLayout.from_manifest(name, fields) for name, fields in manifest["layouts"].items()}
        return cls(layouts, manifest["load_targets"])

    def pack(self, layout: str, values: dict[str, int]) -> int:
        """Pack field values into one integer, failing loudly if a value does not fit its field."""
        return self.layouts[layout].pack(**values)

    def unpack(self, layout: str, word: int) -> dict[str, int]:
        return self.layouts[layout].unpack(word)

    def load_words(self, enc: EncodedLayer) -> list[int]:
        """The whole load sequence for ``enc``: every image, target by target, packed. An image word may
        be signed (activations, one-lane weights, partial sums) or unsigned (packed words): either goes
        into ``data`` as its two's complement bits; a value that fits neither reading is refused."""
        bits = self.layouts["load"].field_width("data")
        words = []
        for target, image in enc.images().items():
            code = self.load_targets[target]
            for value in image:
                value = int(value)
                if not -(1 << (bits - 1)) <= value < (1 << bits):
                    raise ValueError(f"{target} word {value} does not fit the {bits}-bit load stream")
                words.append(self.pack("load", {"target": code, "data": value & ((1 << bits) - 1)}))
        return words

    def config_word(self, enc: EncodedLayer) -> int:
        """The ``cfg`` port's value for ``enc``'s layer."""
        return self.pack("cfg", enc.runtime_config())


def _fields_text(layout: WordLayout) -> str:
    """``layout``'s fields for the doc table: runs of fields of one width and kind as one item."""
    runs: list[tuple[list[str], int, str]] = []
    for name, width in layout.fields:
        kind = "reserved" if name.startswith(RESERVED) else "signed" if name in layout.signed else ""
        if runs and kind != "reserved" and runs[-1][1:] == (width, kind):
            runs[-1][0].append(f"`{name}`")
        else:
            runs.append(([f"`{name}`" if kind != "reserved" else "*reserved*"], width, kind))
    return "; ".join(f"{', '.join(names)} {width}{' each' if len(names) > 1 else ''}"
                     f"{' signed' if kind == 'signed' else ''}" for names, width, kind in runs)


DOC_ARRAYS = ({}, {"dataflow": "strided"}, {"dataflow": "vector"}, {"dataflow": "vector", "lanes": 9},
              {"dataflow": "element"}, {"dataflow": "element", "lanes": 3})
"""The arrays whose words ``docs/architecture.md`` lists, as changes to the default array: the default
one with every word, then each variant with the words it changes."""


def layouts_markdown(default: ArrayConfig) -> str:
    """The word-layout table of ``docs/architecture.md``: every word of ``default`` (the doc passes
    ``ArrayConfig()``), then the words each :data:`DOC_ARRAYS` variant of it changes; fields least
    significant first."""
    base = word_layouts(default)
    lines = ["| word | array | bits | fields, least significant first |", "|---|---|---|---|"]
    for params in DOC_ARRAYS:
        cfg = replace(default, **params)
        for name, layout in word_layouts(cfg).items():
            if params and base.get(name) == layout:
                continue
            lines.append(f"| `{name}` | {cfg.dataflow}, V = {cfg.lanes} | {layout.width} | {_fields_text(layout)} |")
    return "\n".join(lines) + "\n"
