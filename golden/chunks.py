"""The chunk mapping of output pixels to PEs (issue 24): PE rows take runs of consecutive outputs.

The tile mapping gives PE ``(i, j)`` output ``(ty*rows + i, tx*cols + j)``: a layer whose output is not a
multiple of the array's shape leaves PEs idle at its edges (a 13x13 output fills 169 of the 256 PE slots of
16 tiles on a 4x4 array). The **chunk mapping** numbers the outputs in raster order, ``p = y*F + x``, and
gives tile ``t``'s PE row ``i`` the ``cols`` outputs from ``p0 = (t*rows + i)*cols`` on (its *chunk*):
169 outputs take 11 tiles. It is for layers with ``F >= cols`` (a chunk then lies in at most two output
rows) on arrays built with ``chunks`` 1; the host runs each layer in the mapping the cycle model says is
faster (``golden.encode.encode``).

A chunk starting at output ``(y, x)`` is **split** when it runs past its output row (``x + cols > F``) and
a next row exists: its first ``a = F - x`` PEs take segment A, outputs ``(y, x .. F-1)``, the others segment
B, outputs ``(y + 1, 0 .. cols-a-1)``. Each PE row stores its own window rows (the tile's per-row storage,
``hdl.tile``): storage row ``i*K + r`` (``K = max_kernel``) holds kernel row ``r`` of PE row ``i``, and

* segment A's window at storage columns ``0 ..``: input row ``y*st - pad + r``, columns from ``x*st - pad``;
* segment B's window at storage columns from ``a*st + K - 1``: input row ``(y+1)*st - pad + r``, columns
  from ``-pad``.

So PE ``j`` reads storage column ``j*st + s`` in segment A and ``j*st + s + K - 1`` in segment B, one
shift the same for every layer: a PE picks between two columns by a flag fixed for the tile (no crossbar),
and the storage is ``K - 1`` columns wider. Segment B's window starts ``K - 1 >= S - st`` columns after the
last column of A's, so they never overlap.

The loader fills a PE row's window one **sub-window** at a time (:func:`sub_windows`), B before A: the
loader writes ``act_lanes`` columns per cycle at columns aligned to ``act_lanes``, so B's sub-window starts
``d`` columns early at an aligned column, loading ``d`` padding columns (left of the input: never read)
which may land on A's last columns; A, loaded after, writes them again. Each sub-window costs
``golden.timing.SUB_WINDOW_GAP`` cycles at least (its setup overlaps the loads of the one before).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ArrayConfig


@dataclass(frozen=True)
class SubWindow:
    """One ``R x tw`` piece of a PE row's window: input rows from ``y0``, columns from ``x0`` (negative or past
    the input: padding), stored from storage row ``row*K`` and storage column ``col`` on."""

    row: int
    y0: int
    x0: int
    tw: int
    col: int


def usable(f: int, cfg: ArrayConfig) -> bool:
    """Whether a layer of output width ``f`` can run in the chunk mapping on ``cfg``: the array is built with
    it, and a chunk lies in at most two output rows."""
    return bool(cfg.chunks) and f >= cfg.cols


def tile_count(e: int, f: int, cfg: ArrayConfig) -> int:
    """Tiles of one filter group: ``rows*cols`` outputs each, the last one possibly partial."""
    return -(-(e * f) // cfg.pes)


def chunk_starts(e: int, f: int, cfg: ArrayConfig, t: int) -> list[tuple[int, int]]:
    """The output ``(y, x)`` each PE row of tile ``t`` starts at, for its PE rows with outputs."""
    first = t * cfg.pes
    return [divmod(p, f) for p in range(first, min(first + cfg.pes, e * f), cfg.cols)]


def segment_a(e: int, f: int, cfg: ArrayConfig, y: int, x: int) -> tuple[int, bool]:
    """PEs of a chunk starting at ``(y, x)`` in segment A, and whether the chunk is split (the others take
    segment B in row ``y + 1``). A chunk in the last output row ends there (its other PEs have no output)."""
    a = min(cfg.cols, f - x)
    return a, a < cfg.cols and y + 1 < e


def outputs(e: int, f: int, cfg: ArrayConfig, t: int) -> list[int]:
    """Outputs of each PE row of tile ``t`` with outputs (``cols`` but in the layer's last chunk)."""
    first = t * cfg.pes
    return [min(cfg.cols, e * f - p) for p in range(first, min(first + cfg.pes, e * f), cfg.cols)]


def sub_windows(layer, cfg: ArrayConfig, t: int) -> list[SubWindow]:
    """The sub-windows the loader fills for tile ``t`` of ``layer``, in load order (module docstring)."""
    st, pad, K, L = layer.stride, layer.padding, cfg.max_kernel, cfg.act_lanes
    out = []
    for i, (y, x) in enumerate(chunk_starts(layer.e, layer.f, cfg, t)):
        a, split = segment_a(layer.e, layer.f, cfg, y, x)
        if split:
            start = a * st + K - 1  # B's first column
            d = start % L
            out.append(SubWindow(i, (y + 1) * st - pad, -pad - d, d + (cfg.cols - a - 1) * st + layer.s, start - d))
        out.append(SubWindow(i, y * st - pad, x * st - pad, (a - 1) * st + layer.s, 0))
    return out


def storage_columns(cfg: ArrayConfig) -> int:
    """Columns of the tile's window storage: the widest window, and in an array built with ``chunks``
    segment B's shift."""
    return cfg.tile_cols + (cfg.max_kernel - 1 if cfg.chunks else 0)


def write_rows(cfg: ArrayConfig) -> int:
    """Values the loader's row of a tile write takes: a window row, or in the chunk mapping a storage row
    (``i*K + r``)."""
    return max(cfg.tile_rows, cfg.rows * cfg.max_kernel) if cfg.chunks else cfg.tile_rows


def pe_column(cfg: ArrayConfig, j: int, s: int, stride: int, in_b: bool) -> int:
    """The storage column PE ``j`` reads for kernel column ``s`` (in segment B: shifted by ``K - 1``)."""
    return j * stride + s + (cfg.max_kernel - 1 if in_b else 0)
