"""Delay lines whose lengths are ``golden.timing``'s latencies, and the check for a structure that cannot follow one.

Every pipeline depth of the array is a number in ``golden/timing.py``: the timing model predicts the
cycle counts from it, and the gateware builds its register chains from the same number through
:func:`delay` and :func:`delay_line`, so changing the number changes both. Where a block's structure is
fixed (a DSP block's two registers, the read-ahead queue sized for one landing register), it says so at
elaboration with :func:`require`, naming the table entry, instead of silently disagreeing with the model.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, ShapeCastable, Signal, Value, ValueCastable


class LatencyError(ValueError):
    """A ``golden.timing`` latency the gateware cannot be built to."""


def require(entry: str, value: int, ok: bool, why: str) -> None:
    """Raise :class:`LatencyError` unless ``ok``: ``entry`` (a ``golden.timing`` name) is ``value``, which
    the structure described by ``why`` cannot follow."""
    if not ok:
        raise LatencyError(f"golden.timing.{entry} = {value}: {why}; change the structure in hdl/ with it")


def delay_line(m: Module, value, n: int, *, name: str, shape: Shape | ShapeCastable | None = None,
               first: int = 1, domain: str = "sync", **kwargs) -> list[Value]:
    """``[value, value 1 cycle ago, ..., value n cycles ago]``: a chain of ``n`` registers.

    ``name`` names the registers: ``name.format(k=k)`` for the ``k``-th, counted from ``first`` (a name
    without ``{k}`` names every one alike, and Amaranth tells them apart). Each register is shaped like
    ``value`` (a signal's ``init`` and ``attrs`` too, as ``Signal.like``) unless ``shape`` is given;
    ``kwargs`` go to every ``Signal`` (``reset_less``, ``attrs``...). ``n == 0`` is ``[value]``. An
    ``int`` ``value`` is a constant: every register of its line takes it (the constant ``n`` cycles ago).
    """
    if n < 0:
        raise LatencyError(f"{name}: a delay of {n} cycles (a golden.timing latency too small for its structure)")
    taps = [value]
    for k in range(first, first + n):
        reg_name = name.format(k=k)
        if shape is None and isinstance(value, (Signal, ValueCastable)):
            reg = Signal.like(value, name=reg_name, src_loc_at=1, **kwargs)
        else:
            reg = Signal(Value.cast(value).shape() if shape is None else shape, name=reg_name, src_loc_at=1,
                         **kwargs)
        m.d[domain] += reg.eq(value)
        taps.append(reg)
        if not isinstance(value, int):
            value = reg
    return taps


def delay(m: Module, value, n: int, *, name: str, **kwargs) -> Value:
    """``value`` ``n`` cycles ago (``value`` itself for ``n == 0``); see :func:`delay_line`."""
    return delay_line(m, value, n, name=name, **kwargs)[-1]
