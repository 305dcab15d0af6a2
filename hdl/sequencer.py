"""Compute sequencer: issues one scheduled weight per cycle to the whole PE array.

Per tile: restart the entry and unit streams (``hdl.decoder``), pop the group header, then per
channel entry wait (one cycle at least) for the entry's tile buffer to be full, pop the entry and
issue its scheduled weights back to back, one per cycle; free the buffer after the last. Per unit
(see ``golden.dataflow.Unit``) the unit stream's head gives the filter slot (and for rows and
single weights the start position) and is popped on the unit's first cycle; the following positions
come from a counter that steps by ``(step_r, step_s)`` (next column, or the channel's stride-pattern
period), until the unit's end: the kernel's end, the row's end, or at once for single weights. The
streams read ahead, so units follow each other without a bubble. Weights come from the weight buffer
at a running pointer (stored in schedule order, so no weight needs an address of its own).

Every decision of a MAC cycle (does the unit, the entry, the tile end here; which state) comes from
flip-flops instead of the position arithmetic and two count compares in series: ``ulast`` (the unit
ends with this position), ``elast`` (this unit is the entry's last) and ``tlast`` (this entry is the
tile's last) are registered a cycle ahead. For ``ulast`` the position counter also runs one position
ahead (``xr, xs``: the position after the current one), so the flag is one step of that register. On
a unit's first cycle the position comes from the stream or the entry, but its flag needs no stream
answer: a kernel unit starts where every unit of its entry starts (``(0, 0)``, or for ``strided`` the
channel's phase, latched from the entry), a row unit ends by its column alone, a single weight at once.

At a tile's end the accumulator bank is handed to the drain as soon as the drain is idle, and the
next tile starts the cycle after in the other bank. Operands leave this unit registered (stage 1),
aligned with the weight buffer's read data. ``fresh`` marks a slot's first MAC in a tile (tracked
per bank in ``touched``) so the accumulators need no clearing.
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.dataflow import Unit, dataflow_of
from golden.lanes import lane_taps
from golden.timing import PATTERN_LATENCY, entry_cycles
from golden.words import NO_PATTERN_FIELDS

from .delay import delay, require
from .layouts import config_layout, index_addr_bits
from .replica import KEEP
from .signatures import drain_request, entry_stream, operands, unit_stream, weight_read
from .tile import col_select_bit, row_select_bit
from .walker import TileCounter, header_states


class ComputeSequencer(wiring.Component):
    """Issues one scheduled weight word per cycle to the whole PE array, tile after tile.

    Members
    -------
    cfg : In(config_layout(cfg))
        The latched layer configuration.
    start : In(1)
        Start a run from the next cycle.
    ent, unit : Out(entry_stream(cfg)), Out(unit_stream(cfg))
        The sequencer's entry and unit streams from the decoder.
    w : In(weight_read(cfg))
        The weight buffer's read port (``w__addr``, ``w__en``: one word per MAC cycle, ``mac_cycles``; its
        ``w__data`` goes on as the operands' ``weight``).
    full : In(2)
        Per buffer: loaded. ``consumed``/``consume_buf``: Out(1), the entry's last MAC frees that buffer.
    drain : Out(drain_request(cfg))
        The hand-off of a finished tile's bank to the drain, with each bank's ``touched`` slots (the
        slots a MAC wrote in its tile; ``fresh`` reads them too).
    op : Out(operands(cfg))
        The stage-1 operands, to ``hdl.array.PEArray``'s ``op`` (signals ``op_valid``, ``op_fresh``,
        ``op_slot``, ``op_bank``, each lane's one-hot tile selects ``op_row_sel__<l>__<i>`` (one
        register per PE row ``i``, see below) and ``op_col_sel__<l>``, and the weight word ``op_weight``).

    The row selects exist once per PE row, computed side by side from the same registers (``hdl.replica``
    keeps the copies): the tile copies each into a register per group of row-register columns of every
    PE row, and with one source those were ``rows * groups`` loads spread over the die, the worst path of
    the 8x8 ECP5 array (11-12 ns of routing on one net). A copy per row splits that net where it is
    computed, and costs no cycle.
    lane_active : Out(lanes)
        The lanes issuing a scheduled position (``weight_reads``).
    finished, load_stall, drain_stall : Out(1)
        The run's last tile is handed off; a cycle waiting for a buffer; a cycle waiting for the drain.
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)), "start": In(1),
            "ent": Out(entry_stream(cfg)), "unit": Out(unit_stream(cfg)),
            "w": In(weight_read(cfg)),
            "full": In(2), "consumed": Out(1), "consume_buf": Out(1),
            "drain": Out(drain_request(cfg)),
            # stage-1 operands (the weight word is the weight buffer's read data, passed on); each lane's
            # tile selects one-hot (``hdl.tile.row_select``, ``col_select``; none: idle lane)
            "op": Out(operands(cfg)),
            "lane_active": Out(cfg.lanes),  # stage 0: the lanes issuing a scheduled position (weights read)
            "finished": Out(1), "load_stall": Out(1), "drain_stall": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        df = dataflow_of(cfg.dataflow)
        kind = df.unit
        pb = cfg.pos_bits
        m = Module()
        c: data.View = self.cfg
        ent, unit = self.ent, self.unit
        big_r, big_s = c.r[:pb], c.s[:pb]  # R, S <= max_kernel (``golden.layer`` checks it)
        m.submodules.tiles = tiles = TileCounter(cfg)
        # only the FSM, ``buf``, ``bank`` and the touched bits have a reset: every other register is set up
        # by the state that uses it (a reset net to all of them would be one of the design's widest)
        n, k, nu, ku = (Signal(cfg.count_bits, name=nm, reset_less=True) for nm in ("n", "k", "nu", "ku"))
        # position within the current unit (after its first cycle), and the position after it (kernel:
        # r may be past the end)
        r, s = Signal(pb + 1, reset_less=True), Signal(pb, reset_less=True)
        xr, xs = Signal(pb + 1, reset_less=True), Signal(pb, reset_less=True)
        ulast = Signal(reset_less=True)  # the current position is the unit's last
        elast = Signal(reset_less=True)  # the current unit is the entry's last (ku == nu - 1)
        tlast = Signal(reset_less=True)  # the current entry is the tile's last (k == n - 1)
        slot = Signal(cfg.slot_bits, reset_less=True)  # filter slot of the current unit
        first = Signal(reset_less=True)  # the current cycle issues a unit's first position
        buf, bank = Signal(), Signal()
        # (``wbase`` named: the tracer cannot name a variable that the header's states capture)
        wp, wbase = Signal.like(self.w.addr, reset_less=True), Signal.like(self.w.addr, name="wbase", reset_less=True)
        sp, sbase = (Signal(index_addr_bits(cfg), reset_less=True) for _ in range(2))  # units consumed, per group
        # the current entry's stride pattern (strided; constants otherwise), latched when it is popped
        phase_r, phase_s, step_r, step_s = (Signal(pb, name=nm, reset_less=True)
                                              for nm in ("phase_r", "phase_s", "step_r", "step_s"))
        m.d.comb += [
            tiles.cfg.eq(self.cfg), tiles.reset.eq(self.start), tiles.n.eq(n),
            ent.mg.eq(tiles.mg), ent.addr.eq(tiles.gbase), unit.mg.eq(tiles.mg), unit.addr.eq(sbase),
            self.consume_buf.eq(buf), self.w.addr.eq(wp),
            self.op.weight.eq(self.w.data),
            self.drain.bank.eq(bank), self.drain.x0.eq(tiles.x0), self.drain.y0.eq(tiles.y0),
            self.drain.g0.eq(tiles.g0), self.drain.mg.eq(tiles.mg),
        ]
        issue = Signal()  # stage 0: an op is issued this cycle
        m.d.comb += self.w.en.eq(issue)  # every cycle: the port's ``en`` starts at 1 (``weight_read``)
        cur_r, cur_s, cur_slot = Signal.like(r), Signal.like(s), Signal.like(slot)  # its position and slot

        # R - 1 and S - 1, registered (the configuration is static during a run): with the unit step
        # (0, 1) of every dataflow but strided, the walk's wrap and end are small equality compares
        r_last, s_last = Signal(pb, reset_less=True), Signal(pb, reset_less=True)
        m.d.sync += [r_last.eq(big_r - 1), s_last.eq(big_s - 1)]

        def step(pr: Value, ps: Value, dr: Value, ds: Value, name: str) -> tuple[Value, Value, Value]:
            """The position after ``(pr, ps)`` (row may be past the kernel) and whether it ends the unit."""
            ns, nr = Signal(pb + 1, name=f"{name}_ns"), Signal(pb + 2, name=f"{name}_nr")
            carry, ends = Signal(name=f"{name}_carry"), Signal(name=f"{name}_ends")
            if df.pattern:  # the channel's stride-pattern step (dr, ds) = divmod(sigma, S)
                m.d.comb += [ns.eq(ps + ds), carry.eq(ns >= big_s), nr.eq(pr + dr + carry), ends.eq(nr >= big_r)]
                return nr, Mux(carry, ns - big_s, ns), ends
            m.d.comb += [carry.eq(ps == s_last), ns.eq(Mux(carry, 0, ps + 1)), nr.eq(pr + carry),
                         ends.eq(carry & (pr == r_last) if kind is Unit.KERNEL else carry)]
            return nr, ns, ends

        lanes = cfg.lanes
        if kind is Unit.SINGLE:
            m.d.comb += ulast.eq(1)
        elif lanes == 1:
            # the position after a unit's first one: every unit of an entry starts at the same position
            # (kernel units at the entry's phase, row units at column 0). In ENTRY from the entry at the
            # stream's head, in RUN from the latched pattern.
            head_r1, head_s1, head_ulast1 = step(ent.phase_r, ent.phase_s, ent.step_r, ent.step_s, "entry")
            r1, s1, ulast1 = step(phase_r, phase_s, step_r, step_s, "start")

        # ENTRY as a flip-flop of its own (set on the transitions into it, cleared when the entry pops): the
        # lanes' start registers are enabled by it, not by a decode of the FSM state (that decode, fanned
        # out to every lane's registers, led the wide strided array's worst path on the ECP5)
        entering = Signal(name="in_entry")
        lane_r, lane_s, lane_on, unit_end = self._lanes(m, cur_r, cur_s, ulast, entering, issue,
                                                        (phase_r, phase_s, step_r, step_s))
        # strided with lanes: the lanes' starts are computed from the latched pattern, so an entry spends
        # ``PATTERN_LATENCY`` cycles in ENTRY before it can pop (``golden.timing.entry_cycles``)
        wait = entry_cycles(cfg) - 1
        if wait:
            require("PATTERN_LATENCY", PATTERN_LATENCY, PATTERN_LATENCY >= 1,
                    "hdl.sequencer latches an entry's pattern in a register before computing the lanes' starts")
        # cycles the entry has been in ENTRY, up to ``wait``: its pattern and the starts computed from it have
        # passed their registers once it reaches ``wait``
        primed = Signal(range(max(wait, 1) + 1), name="pattern_primed", reset_less=True)
        ready = primed == wait

        # TILE_END as a flip-flop of its own (set on the transitions into it, cleared when it hands the
        # tile over), so the drain start and the tile walker's advance are a gate of two flip-flops, not
        # a decode of the FSM state
        in_tile_end = Signal(name="in_tile_end")
        m.d.comb += [self.drain.start.eq(in_tile_end & self.drain.idle),
                     tiles.advance.eq(in_tile_end & self.drain.idle)]

        with m.FSM(name="sequencer"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "TILE"

            def restart() -> None:  # TILE: the unit stream too; the tile's weights and units, its bank
                m.d.comb += unit.restart.eq(1)
                m.d.sync += [wp.eq(wbase), sp.eq(sbase)]
                for b in range(2):
                    with m.If(bank == b):
                        m.d.sync += self.drain.touched[b].eq(0)

            def header() -> None:
                m.d.sync += [n.eq(ent.hcount), k.eq(0), tlast.eq(ent.hcount == 1)]
                with m.If(ent.hempty):
                    m.d.sync += in_tile_end.eq(1)
                    m.next = "TILE_END"
                with m.Else():
                    m.d.sync += entering.eq(1)
                    m.next = "ENTRY"

            header_states(m, ent, restart=restart, header=header)
            with m.State("ENTRY"):
                m.d.sync += [nu.eq(ent.count), ku.eq(0), elast.eq(ent.count == 1), first.eq(1),
                             phase_r.eq(ent.phase_r), phase_s.eq(ent.phase_s),
                             step_r.eq(ent.step_r), step_s.eq(ent.step_s)]
                if kind is not Unit.SINGLE and lanes == 1:
                    m.d.sync += [xr.eq(head_r1), xs.eq(head_s1), ulast.eq(head_ulast1)]
                full_b = self.full.bit_select(buf, 1)
                if wait:
                    with m.If(~ready):
                        m.d.sync += primed.eq(primed + 1)
                with m.If(full_b & ready if wait else full_b):
                    m.d.comb += ent.next.eq(1)
                    m.d.sync += entering.eq(0)
                    if wait:
                        m.d.sync += primed.eq(0)
                    m.next = "RUN"
                with m.Else():  # waiting for the window (not the pattern's cycles)
                    m.d.comb += self.load_stall.eq(~full_b & ready if wait else 1)
            with m.State("RUN"):
                m.d.comb += [issue.eq(1), unit.next.eq(first)]
                m.d.sync += [wp.eq(wp + 1), first.eq(0), slot.eq(cur_slot)]
                # current position and slot: the unit's start on its first cycle, the counters after
                start_r, start_s = {Unit.KERNEL: (phase_r, phase_s), Unit.ROW: (unit.r[0], 0),
                                    Unit.SINGLE: (unit.r[0], unit.s[0])}[kind]
                m.d.comb += [cur_r.eq(Mux(first, start_r, r)), cur_s.eq(Mux(first, start_s, s)),
                             cur_slot.eq(Mux(first, unit.slot, slot))]
                if lanes > 1:  # the lanes keep their own positions (``_lanes``); a row unit's row is held here
                    m.d.sync += r.eq(cur_r)
                elif kind is not Unit.SINGLE:
                    # the lookahead becomes the position; it steps on, or restarts after the next unit's start
                    m.d.sync += [r.eq(xr if kind is Unit.KERNEL else cur_r), s.eq(xs)]
                    r2, s2, ulast2 = step(xr, xs, step_r, step_s, "ahead")
                    with m.If(ulast):
                        m.d.sync += [xr.eq(r1), xs.eq(s1), ulast.eq(ulast1)]
                    with m.Else():
                        m.d.sync += [xr.eq(r2), xs.eq(s2), ulast.eq(ulast2)]
                with m.If(unit_end):
                    m.d.sync += [ku.eq(ku + 1), sp.eq(sp + 1), first.eq(1), elast.eq(ku + 2 == nu)]
                    with m.If(elast):
                        m.d.comb += self.consumed.eq(1)
                        m.d.sync += [buf.eq(~buf), k.eq(k + 1), tlast.eq(k + 2 == n)]
                        with m.If(~tlast):
                            m.d.sync += entering.eq(1)
                            m.next = "ENTRY"
                        with m.Else():
                            m.d.sync += in_tile_end.eq(1)
                            m.next = "TILE_END"
            with m.State("TILE_END"):
                with m.If(self.drain.idle):
                    m.d.sync += [bank.eq(~bank), in_tile_end.eq(0)]
                    with m.If(tiles.last_in_group):
                        m.d.sync += [wbase.eq(wp), sbase.eq(sp)]
                    with m.If(tiles.last):
                        m.next = "FINISHED"
                    with m.Else():
                        m.next = "TILE"
                with m.Else():
                    m.d.comb += self.drain_stall.eq(1)
            with m.State("FINISHED"):
                m.d.comb += self.finished.eq(1)
                with m.If(self.start):
                    m.next = "TILE"
        with m.If(self.start):
            m.d.sync += [buf.eq(0), bank.eq(0), wbase.eq(0), sbase.eq(0), primed.eq(0)]

        # stage 1: operands registered, aligned with the weight buffer's read data
        m.d.sync += [self.op.valid.eq(issue), self.op.slot.eq(cur_slot), self.op.bank.eq(bank)]
        # the tile's selects decoded here, in stage 0, so the array only copies flip-flops: kernel row and
        # read buffer, kernel column and stride (static during a run: its compares are registered)
        K = cfg.max_kernel
        stride_is = [Signal(name=f"stride_is{st}", reset_less=True) for st in range(1, cfg.max_stride + 1)]
        m.d.sync += [flag.eq(c.stride == st) for st, flag in enumerate(stride_is, start=1)]
        for lane, (taps_r, taps_s) in enumerate(lane_taps(cfg.dataflow, K, lanes)):  # the tile reads no other
            col_sel = self.op.col_sel[lane]
            for i in range(cfg.rows):  # PE row i's own copy: the port is the register, so the port keeps it
                row_sel = self.op.row_sel[lane][i]
                row_sel.attrs.update(KEEP)
                m.d.sync += [row_sel[row_select_bit(cfg, b, r)].eq(lane_on[lane] & (buf == b) & (lane_r[lane] == r))
                             for b in range(2) for r in taps_r]
            m.d.sync += [col_sel[col_select_bit(cfg, st, s)].eq(stride_is[st - 1] & (lane_s[lane] == s))
                         for st in range(1, cfg.max_stride + 1) for s in taps_s]
            m.d.comb += self.lane_active[lane].eq(issue & lane_on[lane])
        # ``fresh``: the op's slot has not been touched in this tile, a stage-1 register like the slot: looked
        # up in stage 0 from the slot being issued, with the touched bit the stage-1 op sets at this same
        # edge forwarded (no clear of the bank falls in a cycle that issues: the clear is the tile's first
        # state). Looked up in stage 1 from ``op_slot``, the touched bits' mux sat on a route across the
        # die into the array's register of it (the 8x8 ECP5 array's worst path, 5.8 ns of routing)
        slot1 = self.op.slot
        set_now = self.op.valid & (self.op.bank == bank) & (slot1 == cur_slot)
        m.d.sync += self.op.fresh.eq(~(Mux(bank, self.drain.touched[1], self.drain.touched[0]).bit_select(cur_slot, 1)
                                       | set_now))
        for b in range(2):
            with m.If((self.op.bank == b) & self.op.valid):
                m.d.sync += self.drain.touched[b].bit_select(slot1, 1).eq(1)
        return m

    def _lanes(self, m: Module, cur_r: Signal, cur_s: Signal, ulast: Signal, entering: Signal,
               issue: Signal, pattern: tuple[Signal, Signal, Signal, Signal]) -> tuple:
        """The positions of a cycle's lanes (``golden.lanes``): ``(lane_r, lane_s, lane_on, unit_end)``.

        With one lane that is the current position ``(cur_r, cur_s)``, and ``ulast`` (registered a cycle
        ahead) ends the unit. With more:

        * kernel units (and row units with ``S > V``) walk: lane ``l`` is ``l`` steps of the unit's walk
          after lane 0 (steps of the channel's stride pattern ``sigma``, or of one position). Each lane
          keeps its position in registers of its own and advances by ``V`` steps per cycle, in one add
          with carry (``V*sigma`` as a row and column offset), so no lane's position waits for another's
          (a chain of ``V`` steps per cycle was the wide array's critical path, 27 LUT levels at
          ``V = 9``). Every unit of an entry starts at the same positions (the entry's phase; a row's
          column 0), computed once per entry in ``ENTRY`` from its ``pattern`` as latched there (the
          registers ``phase_r``, ``phase_s``, ``step_r``, ``step_s``), and the lanes return to them
          when a unit ends: when lane 0's next position leaves the kernel (the row);
        * row units with ``S <= V`` name up to ``floor(V/S)`` rows: lane ``l`` takes column ``l % S``
          of the word's row ``l // S`` (registered per lane from ``S``, static during a run);
        * single weights: lane ``l`` takes the word's ``l``-th ``(r, s)``.

        A word of rows or weights is one cycle, so it always ends its unit.
        """
        cfg = self._cfg
        pb, lanes, unit = cfg.pos_bits, cfg.lanes, self.unit
        kind = dataflow_of(cfg.dataflow).unit
        lane_r = [Signal(pb + 2, name=f"lane{lane}_r") for lane in range(lanes)]
        lane_s = [Signal(pb + 1, name=f"lane{lane}_s") for lane in range(lanes)]
        lane_on = [Signal(name=f"lane{lane}_on") for lane in range(lanes)]
        unit_end = Signal()
        if lanes == 1:
            m.d.comb += [lane_r[0].eq(cur_r), lane_s[0].eq(cur_s), lane_on[0].eq(1), unit_end.eq(ulast)]
            return lane_r, lane_s, lane_on, unit_end

        def walk() -> tuple[list, Value]:
            """Lanes on their own position registers (see above), and whether the unit goes on."""
            big_r, big_s = self.cfg.r[:pb], self.cfg.s[:pb]
            if dataflow_of(cfg.dataflow).pattern:
                phase_r, phase_s, step_r, step_s = pattern
            else:  # every unit from (0, 0) (a row: its column 0), one position per step
                phase_r, phase_s, step_r, step_s = (Const(value, pb) for _, value in NO_PATTERN_FIELDS)
            rb = bits_for(cfg.max_kernel ** 2 * (2 * lanes + 1))  # rows past the kernel, up to the far lookahead
            K = cfg.max_kernel

            def times(x: Value, k: int) -> Value:
                """``k * x`` as shifts and adds (no multiplier)."""
                return sum((x << b) for b in range(k.bit_length()) if k >> b & 1) if k else Const(0, 1)

            def divmod_s(x: Value, width: int, name: str) -> tuple[Signal, Signal]:
                """``divmod(x, S)`` for ``x < 2**width`` and the run's ``S`` (a table per ``S``)."""
                xs = Signal(width, name=f"{name}_x")
                m.d.comb += xs.eq(x)
                q, rem = Signal(rb, name=f"{name}_q"), Signal(pb, name=f"{name}_rem")
                with m.Switch(big_s):  # a case per S and x (the outputs are 0 elsewhere: no latch)
                    for sv in range(1, K + 1):
                        with m.Case(sv), m.Switch(xs):
                            for v in range(1 << width):
                                with m.Case(v):
                                    m.d.comb += [q.eq(v // sv), rem.eq(v % sv)]
                return q, rem

            # Registers of lanes 0 .. V and 2V: lane l's start phi + l*sigma (set per entry) and its
            # position. Lanes V and 2V are not issued: lane V is lane 0 one advance on (the lookahead),
            # lane 2V two (the far lookahead). Whether the lookahead is still in the unit (``more``) is a
            # flip-flop, so the unit's end, which the FSM acts on, is a register, not this cycle's adds and
            # compares (those were the wide array's critical path on the ECP5, through the FSM into the
            # unit counter). Its next value is a compare of the far lookahead's row, a register, so no
            # advance's add sits before that compare either (S into the advance's carry, the row's add, the
            # compare against R was the wide strided array's worst path: 95.78 MHz).
            regs = [*range(lanes + 1), 2 * lanes]
            start_r = [Signal(rb, name=f"lane{lane}_start_r", reset_less=True) for lane in regs]
            start_s = [Signal(pb, name=f"lane{lane}_start_s", reset_less=True) for lane in regs]
            pos_r = [Signal(rb, name=f"lane{lane}_pos_r", reset_less=True) for lane in regs]
            pos_s = [Signal(pb, name=f"lane{lane}_pos_s", reset_less=True) for lane in regs]
            adv_r, adv_s = Signal(rb, name="advance_r", reset_less=True), Signal(pb, name="advance_s", reset_less=True)
            more, start_more = Signal(name="walk_more", reset_less=True), Signal(name="start_more", reset_less=True)
            limit = big_r if kind is Unit.KERNEL else 1  # a row unit never leaves its row
            # The starts are computed every cycle from the pattern (latched in ENTRY) and taken by their
            # registers in ENTRY only: ``entering`` is the registers' enable, not a term of the sums (gating
            # the tables' outputs with it put its fan-out at the head of the wide strided array's worst path)
            def sw(lane: int) -> int:  # phase_s + l * step_s, step_s < S <= K
                return bits_for((K - 1) * lane + K)

            # With a stride pattern, the starts and the advance pass ``PATTERN_LATENCY - 1`` registers of their
            # own after the pattern's (``golden.timing.PATTERN_LATENCY``), so that the registers ENTRY loads
            # take them, and the lookahead's compare against R, from flip-flops: the table, the add and the
            # compare in one cycle after the pattern's register were the wide strided array's worst path.
            stages = PATTERN_LATENCY - 1 if dataflow_of(cfg.dataflow).pattern else 0
            starts = []
            for lane in regs:
                q, rem = divmod_s(phase_s + times(step_s, lane), sw(max(lane, lanes)), f"lane{lane}_start")
                r0 = Signal(rb, name=f"lane{lane}_start_r0")
                m.d.comb += r0.eq(phase_r + times(step_r, lane) + q)
                starts.append((delay(m, r0, stages, name=f"lane{lane}_start_r{{k}}", reset_less=True),
                               delay(m, rem, stages, name=f"lane{lane}_start_s{{k}}", reset_less=True)))
            adv_q, adv_rem = divmod_s(times(step_s, lanes), sw(lanes), "advance")
            adv_r0 = delay(m, times(step_r, lanes) + adv_q, stages, name="advance_r{k}", reset_less=True)
            adv_rem = delay(m, adv_rem, stages, name="advance_s{k}", reset_less=True)
            with m.If(entering):
                for lane, (r0, rem) in enumerate(starts):
                    m.d.sync += [start_r[lane].eq(r0), start_s[lane].eq(rem), pos_r[lane].eq(r0), pos_s[lane].eq(rem)]
                lookahead = starts[lanes][0]  # lane V's
                m.d.sync += [more.eq(lookahead < limit), start_more.eq(lookahead < limit)]
                m.d.sync += [adv_r.eq(adv_r0), adv_s.eq(adv_rem)]

            def advanced(pr: Value, ps: Value, name: str) -> tuple[Signal, Value]:
                """``(pr, ps)`` advanced by ``V * sigma`` positions (the row may leave the kernel)."""
                ns, carry = Signal(pb + 1, name=f"{name}_ns"), Signal(name=f"{name}_carry")
                nr = Signal(rb, name=f"{name}_nr")
                m.d.comb += [ns.eq(ps + adv_s), carry.eq(ns >= big_s), nr.eq(pr + adv_r + carry)]
                return nr, Mux(carry, ns - big_s, ns)

            # every register V steps on (lane 0's: the lookahead's position; the lookahead's: the far
            # lookahead's), or back to its start
            far = lanes + 1  # the far lookahead's registers
            nxt = [(pos_r[lanes], pos_s[lanes]),
                   *(advanced(pos_r[lane], pos_s[lane], f"lane{lane}") for lane in range(1, lanes)),
                   (pos_r[far], pos_s[far]), advanced(pos_r[far], pos_s[far], f"lane{2 * lanes}")]
            with m.If(issue & ~entering):
                with m.If(more):
                    m.d.sync += more.eq(pos_r[far] < limit)  # the lookahead's next row: the far one's
                    for lane in range(lanes + 2):
                        m.d.sync += [pos_r[lane].eq(nxt[lane][0]), pos_s[lane].eq(nxt[lane][1])]
                with m.Else():
                    m.d.sync += more.eq(start_more)
                    for lane in range(lanes + 2):
                        m.d.sync += [pos_r[lane].eq(start_r[lane]), pos_s[lane].eq(start_s[lane])]
            if kind is Unit.KERNEL:
                pos = [(pos_r[lane], pos_s[lane], pos_r[lane] < big_r) for lane in range(lanes)]
            else:  # a row's columns: the row from the unit
                pos = [(cur_r, pos_s[lane], pos_r[lane] == 0) for lane in range(lanes)]
            return pos, more

        def named(positions: int, count: Value) -> list:
            """Lane ``l`` at the word's group ``g_l`` (column ``j_l`` of a row, or the whole position)."""
            rs = Array(unit.r[g] for g in range(positions))
            ss = Array(unit.s[g] for g in range(positions))
            out = []
            for lane in range(lanes):
                if kind is Unit.ROW:  # row l // S, column l % S, from S (static during a run)
                    g = Signal(range(lanes), name=f"lane{lane}_row", reset_less=True)
                    j = Signal(pb, name=f"lane{lane}_col", reset_less=True)
                    with m.Switch(self.cfg.s[:pb]):
                        for big_s in range(1, cfg.max_kernel + 1):
                            with m.Case(big_s):
                                m.d.sync += [g.eq(lane // big_s), j.eq(lane % big_s)]
                    out.append((rs[g], j, g < count))
                else:
                    out.append((rs[lane], ss[lane], lane < count))
            return out

        positions = len(unit.r)
        if kind is Unit.KERNEL:
            lanes_at, end = walk()
            end = ~end
        elif kind is Unit.SINGLE:
            lanes_at, end = named(positions, unit.count), Const(1)
        else:  # rows: several per cycle with S <= V, else a row's columns V at a time
            rows_mode = Signal(name="rows_per_cycle", reset_less=True)
            m.d.sync += rows_mode.eq(self.cfg.s <= lanes)
            walked, more = walk()
            rows = named(positions, unit.count)
            lanes_at = [tuple(Mux(rows_mode, a, b) for a, b in zip(row, w, strict=True))
                        for row, w in zip(rows, walked, strict=True)]
            end = rows_mode | ~more
        for lane, (r, s, on) in enumerate(lanes_at):
            m.d.comb += [lane_r[lane].eq(r), lane_s[lane].eq(s), lane_on[lane].eq(on)]
        m.d.comb += unit_end.eq(end)
        return lane_r, lane_s, lane_on, unit_end
