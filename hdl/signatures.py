"""The signatures of the array's internal buses: every block boundary is declared here, once.

Each function returns a bus as its *producer* sees it (``Out`` members are driven by the block that
owns the bus, ``In`` members answer it); the consumer declares the same bus ``In(...)``, which flips
it, and ``hdl.accelerator`` joins the two with ``wiring.connect``, which checks that every member is
there with the same shape. A bus that changes shape therefore changes in one place.

=================  ===========================  ==============================================
bus                producer (``Out``)           consumer (``In``)
=================  ===========================  ==============================================
``entry_stream``   loader ``ent``, seq ``ent``  decoder ``loader``, ``seq``
``unit_stream``    sequencer ``unit``           decoder ``unit``
``index_write``    load (accelerator)           decoder ``wr``
``drain_request``  sequencer ``drain``          drain ``req``
``weight_read``    weight buffer's read port    sequencer ``w``
``operands``       sequencer ``op``             array ``op``
``tile_write``     loader ``tile``              array ``tile`` (and on to its tile's ``w``)
``act_read``       loader ``act``               activation buffer ``rd``
``drain_read``     drain ``rd``                 array ``drain``
``output_write``   drain or output stage        output buffer ``wr``
                   ``out``
``drained``        drain ``out`` (with the      output stage ``inp``
                   output stage)
``psum_read``      output stage ``psum``        output buffer ``psum``
``mem_write``      load (accelerator)           activation buffer ``wr``, output stage ``bias``
                                                and ``requant``
``mem_read``       read-back (``hdl.prefetch``) output buffer ``rd``
=================  ===========================  ==============================================

**Names.** A bus's signals keep the names they had as loose ports: ``tile_we__0`` rather than
Amaranth's default ``tile__we__0`` (a :class:`Bus` names a member ``<prefix><member>``, the prefix
being the bus's own name and ``_`` unless the declaration gives another). The Verilog, the names in
waveforms and the synthesis reports therefore did not change when the buses got signatures.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import ShapeLike, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden import chunks
from golden.config import ArrayConfig, bits_for
from golden.dataflow import unit_groups
from golden.words import PATTERN_FIELDS

from .layouts import index_addr_bits


class Bus(wiring.Signature):
    """A signature whose signals are named ``<prefix><member>`` (indices appended as ``__<i>``).

    ``prefix`` defaults to the name of the member that holds the bus plus ``_`` (a bus ``tile`` with
    a member ``we`` makes ``tile_we``); a declaration passes its own to keep a port's older name
    (``""``: the members' bare names). Only the names differ from a plain :class:`wiring.Signature`:
    ``wiring.connect`` compares members, not prefixes, so a bus connects across declarations with
    different prefixes.
    """

    def __init__(self, members: Mapping[str, wiring.Member], *, prefix: str | None = None):
        self._prefix = prefix
        super().__init__(members)

    def with_prefix(self, prefix: str) -> Bus:
        """The same members, named ``<prefix><member>``."""
        return Bus(dict(self.members.items()), prefix=prefix)

    def create(self, *, path: tuple | None = None, src_loc_at: int = 0) -> wiring.PureInterface:
        *outer, name = path if path else ("bus",)
        prefix = f"{name}_" if self._prefix is None else self._prefix
        # Amaranth names a signal by its path joined with ``__``: the bus's members are created as
        # members ``<prefix><member>`` of the bus's parent, then filed under their own names
        named = wiring.Signature({prefix + key: member for key, member in self.members.items()})
        signals = named.members.create(path=tuple(outer), src_loc_at=1 + src_loc_at)
        return BusInterface(self, {key: signals[prefix + key] for key in self.members})

    def __repr__(self) -> str:
        return f"Bus({dict(self.members.items())!r}, prefix={self._prefix!r})"


class BusInterface:
    """The interface object a :class:`Bus` creates: its ``signature`` and one attribute per member (all
    that ``amaranth.lib.wiring`` asks of an interface), holding the signals under their bus names."""

    def __init__(self, signature: Bus, members: Mapping[str, object]):
        self.signature = signature
        self.__dict__.update(members)

    def __repr__(self) -> str:
        return f"<BusInterface {self.signature!r}>"


# -- streams from the decoder (``hdl.decoder``) ---------------------------------------------------

def entry_stream(cfg: ArrayConfig) -> wiring.Signature:
    """A walker's view of its channel-entry stream: the group header, then the group's entries.

    ``mg`` (filters in the group) and ``plane`` (``H*W``) are context the counter-based dense decoder
    needs; a walker that does not use the ``chan`` answer may leave ``plane`` at 0. An entry's
    ``count`` is its number of units. The group header is the first item after a restart, so its
    fields come separately and from a register (``hcount`` entries, ``hempty``: ``hcount`` is 0),
    valid while the header is at the head: a walker's per-tile decision then starts at a flip-flop,
    not at the queue's output mux. ``valid`` (the head holds an item) is for checking the contract in
    simulation.
    """
    pb = cfg.pos_bits
    return wiring.Signature({
        "restart": Out(1), "addr": Out(index_addr_bits(cfg)), "mg": Out(cfg.count_bits),
        "plane": Out(bits_for(cfg.act_depth)), "next": Out(1),
        "valid": In(1), "count": In(cfg.count_bits), "chan": In(cfg.chan_bits),
        "hcount": In(cfg.count_bits), "hempty": In(1),
        **{name: In(pb) for name in PATTERN_FIELDS},  # the entry's stride pattern (``golden.words.chan_word``)
    })


def unit_stream(cfg: ArrayConfig) -> wiring.Signature:
    """The sequencer's view of the unit stream: the group's units, entry after entry.

    ``mg`` must be valid from the cycle after ``restart`` until the next restart (the dense decoder
    counts slots up to it); ``addr`` in the cycle of ``restart``. A unit names its slot and, in
    ``count`` position groups (``golden.dataflow.unit_groups``; 1 with one lane), rows ``r`` and
    columns ``s`` (0 where the dataflow's word has none).
    """
    groups = unit_groups(cfg)
    return wiring.Signature({
        "restart": Out(1), "addr": Out(index_addr_bits(cfg)), "mg": Out(cfg.count_bits), "next": Out(1),
        "valid": In(1), "slot": In(cfg.slot_bits), "count": In(bits_for(groups)),
        "r": In(cfg.pos_bits).array(groups), "s": In(cfg.pos_bits).array(groups),
    })


def index_write(cfg: ArrayConfig) -> wiring.Signature:
    """Writer's view: one word into the channel index (``unit=0``) or the unit index (``unit=1``)."""
    return wiring.Signature({
        "en": Out(1), "unit": Out(1), "addr": Out(index_addr_bits(cfg)),
        "data": Out(max(cfg.chan_index_bits, cfg.unit_index_bits)),
    })


# -- the sequencer's outputs ------------------------------------------------------------------------

def drain_request(cfg: ArrayConfig) -> wiring.Signature:
    """Sequencer's view of the hand-off of one finished tile to the drain: ``start`` with the tile's
    accumulator ``bank``, its first-row/column/group flags and its group's filter count; per bank the
    slots a MAC wrote in its tile (``touched``: the others drain as 0); ``idle`` answers whether the
    drain can take one."""
    return wiring.Signature({
        "start": Out(1), "bank": Out(1), "x0": Out(1), "y0": Out(1), "g0": Out(1), "mg": Out(cfg.count_bits),
        "touched": Out(cfg.acc_depth).array(2),
        "idle": In(1),
    })


def weight_shape(cfg: ArrayConfig) -> ShapeLike:
    """A weight-buffer word: one signed weight, or with lanes a ``golden.words.weight_word`` of one per lane."""
    return signed(cfg.weight_bits) if cfg.lanes == 1 else cfg.weight_word_bits


def weight_read(cfg: ArrayConfig) -> wiring.Signature:
    """The weight buffer's read port (``lib.memory``), as the buffer sees it: ``addr`` and ``en`` in, and
    ``data`` out a cycle after an enabled read. The sequencer takes it ``In``; its ``en`` starts at 1
    like the port's (``connect`` compares initial values), and the sequencer drives it every cycle."""
    # the memory's own address width (0 bits for a one-word buffer, where ``bits_for`` gives 1)
    return memory.ReadPort.Signature(addr_width=(cfg.weight_depth - 1).bit_length(), shape=weight_shape(cfg))


def operands(cfg: ArrayConfig, prefix: str | None = None) -> Bus:
    """The operands of one MAC cycle, registered in the sequencer (stage 1), broadcast to every PE:
    ``valid`` (an op to accumulate), ``fresh`` (its slot's first in the tile), the accumulator
    ``slot`` and ``bank``, each lane's one-hot tile selects ``row_sel``/``col_sel`` (``hdl.tile``; the
    row selects once per PE row, see :class:`hdl.sequencer.Sequencer`), and the ``weight`` word
    (``golden.words.weight_word``: the weight buffer's read data, which the sequencer passes on; stage 1
    too, aligned with the rest)."""
    return Bus({
        "valid": Out(1), "fresh": Out(1), "slot": Out(cfg.slot_bits), "bank": Out(1),
        "row_sel": Out(2 * cfg.max_kernel).array(cfg.lanes, cfg.rows),
        "col_sel": Out(cfg.max_stride * cfg.max_kernel).array(cfg.lanes),
        "weight": Out(cfg.weight_word_bits),
    }, prefix=prefix)


# -- the tile loader's buses ----------------------------------------------------------------------

def tile_write(cfg: ArrayConfig, prefix: str | None = None) -> Bus:
    """The loader's write into a tile buffer: per port (window row ``k`` x lane ``l``) an enable
    ``we``, an activation ``data`` and ``pad``, the position is padding (the tile stores 0: ``data`` is
    then the activation buffer's stale output, zeroed a register stage after the fan-out to the PE
    rows, not before it, so the block RAM's output drives the tile's first registers through no LUT);
    the buffer ``buf``, the window rows ``row`` of the cycle and the first column ``col``; with the chunk
    mapping (``cfg.chunks``) whether the layer runs in it and each buffer's segment-B flags (``hdl.tile``)."""
    members = {
        "we": Out(1).array(cfg.act_ports), "pad": Out(1).array(cfg.act_ports), "buf": Out(1),
        "row": Out(bits_for(chunks.write_rows(cfg) - 1)).array(cfg.act_rows),
        "col": Out(bits_for(chunks.storage_columns(cfg) - 1)), "data": Out(signed(cfg.act_bits)).array(cfg.act_ports),
    }
    if cfg.chunks:  # the chunk mapping (``golden.chunks``): ``row`` is then a storage row, and per buffer and PE
        # row the PEs that read segment B
        members.update(chunks=Out(1), split=Out(cfg.cols).array(2, cfg.rows))
    return Bus(members, prefix=prefix)


def act_read(cfg: ArrayConfig, prefix: str | None = None) -> Bus:
    """The loader's reads of the activation buffer, one per port: ``addr``, ``en``, and ``data`` a
    cycle after an enabled read."""
    return Bus({
        "addr": Out(bits_for(cfg.act_depth - 1)).array(cfg.act_ports), "en": Out(1).array(cfg.act_ports),
        "data": In(signed(cfg.act_bits)).array(cfg.act_ports),
    }, prefix=prefix)


# -- the drain's and the output stage's buses ----------------------------------------------------

def drain_read(cfg: ArrayConfig, prefix: str | None = None) -> Bus:
    """The drain's read of every PE's accumulator at one address (``addr``: slot and bank) with
    ``en``; PE ``(i, j)``'s ``data[i * cols + j]`` follows ``golden.timing.array_drain_latency``
    cycles later."""
    return Bus({
        "addr": Out(cfg.slot_bits + 1), "en": Out(1),
        "data": In(signed(cfg.acc_bits)).array(cfg.rows * cfg.cols),
    }, prefix=prefix)


def output_write(cfg: ArrayConfig, prefix: str | None = None) -> Bus:
    """A write of ``drain_lanes`` consecutive outputs from ``addr`` (``hdl.buffers.OutputBuffer``):
    per lane the word ``data`` and its enable ``en``."""
    lanes = cfg.drain_lanes
    return Bus({
        "addr": Out(bits_for(cfg.out_depth - 1)),
        "data": Out(signed(cfg.acc_bits)).array(lanes), "en": Out(1).array(lanes),
    }, prefix=prefix)


def drained(cfg: ArrayConfig, prefix: str | None = None) -> Bus:
    """The drain's outputs on their way to the output stage: an :func:`output_write` and ``filt``, the
    outputs' filter within the run (the address of the stage's bias and requantization words)."""
    return Bus({**dict(output_write(cfg).members.items()), "filt": Out(bits_for(cfg.param_depth - 1))},
               prefix=prefix)


def psum_read(cfg: ArrayConfig, prefix: str | None = None) -> Bus:
    """The output stage's read of the partial sums at the ``drain_lanes`` addresses from ``addr``
    (``golden.timing.PSUM_LATENCY`` cycles to ``data``)."""
    return Bus({
        "addr": Out(bits_for(cfg.out_depth - 1)), "en": Out(1),
        "data": In(signed(cfg.acc_bits)).array(cfg.drain_lanes),
    }, prefix=prefix)


# -- memory ports ------------------------------------------------------------------------------------

def mem_write(addr_bits: int, shape: ShapeLike, prefix: str | None = None) -> Bus:
    """A memory's write port as its writer sees it, like a ``lib.memory`` write port (one enable bit)."""
    return Bus({"addr": Out(addr_bits), "en": Out(1), "data": Out(shape)}, prefix=prefix)


def mem_read(addr_bits: int, shape: ShapeLike, prefix: str | None = None) -> Bus:
    """A memory's read port as its reader sees it: ``data`` the cycle after an enabled read."""
    return Bus({"addr": Out(addr_bits), "en": Out(1), "data": In(shape)}, prefix=prefix)
