"""The chunk mapping's geometry (``golden.chunks``): the sub-windows the loader fills put every input pixel a
PE reads where the PE reads it, every output is one PE's, and the host's choice of mapping is the faster."""

import itertools

import numpy as np
import pytest

from golden import chunks
from golden.config import ArrayConfig
from golden.encode import encode
from golden.layer import Layer
from golden.timing import simulate

SHAPES = [  # (C, H, W, R, stride, pad) on a rows x cols array
    (1, 15, 15, 3, 1, 1), (1, 13, 13, 3, 1, 0), (1, 14, 14, 3, 2, 1), (1, 9, 11, 1, 1, 0),
    (1, 12, 10, 3, 2, 0), (1, 8, 5, 2, 1, 1), (1, 16, 16, 3, 1, 1),
]
ARRAYS = [dict(rows=4, cols=4), dict(rows=2, cols=3, act_lanes=3), dict(rows=3, cols=5, act_lanes=2),
          dict(rows=4, cols=4, act_lanes=6, max_kernel=7)]


def _storage(layer: Layer, cfg: ArrayConfig, t: int) -> dict[tuple[int, int], int | None]:
    """(storage row, column) -> input pixel value (``None`` for padding), after the loader's sub-windows in
    their order, each written ``act_lanes`` aligned columns at a time and live below its width."""
    a = layer.activations[0]
    store: dict[tuple[int, int], int | None] = {}
    for sw in chunks.sub_windows(layer, cfg, t):
        assert sw.col % cfg.act_lanes == 0
        for r in range(layer.r):
            for v in range(sw.tw):
                y, x = sw.y0 + r, sw.x0 + v
                inside = 0 <= y < layer.h and 0 <= x < layer.w
                store[(sw.row * cfg.max_kernel + r, sw.col + v)] = int(a[y, x]) if inside else None
    return store


def _usable(shape: tuple, arr: dict) -> bool:
    """The chunk mapping can take ``shape`` on ``arr`` (its output at least as wide as the array)."""
    _, _, w, r, stride, pad = shape
    return chunks.usable((w + 2 * pad - r) // stride + 1, ArrayConfig(chunks=1, **arr))


@pytest.mark.parametrize("shape,arr", [(s, a) for s, a in itertools.product(SHAPES, ARRAYS) if _usable(s, a)])
def test_every_pe_reads_its_window(shape, arr):
    c, h, w, r, stride, pad = shape
    cfg = ArrayConfig(chunks=1, epilogue=0, **arr)
    rng = np.random.default_rng(1)
    layer = Layer(np.ones((1, c, r, r), dtype=np.int64), rng.integers(1, 100, (c, h, w)), stride, pad)
    padded = np.pad(layer.activations[0], pad)
    seen = set()
    for t in range(chunks.tile_count(layer.e, layer.f, cfg)):
        store = _storage(layer, cfg, t)
        for i, (y, x) in enumerate(chunks.chunk_starts(layer.e, layer.f, cfg, t)):
            a, split = chunks.segment_a(layer.e, layer.f, cfg, y, x)
            for j in range(a + (cfg.cols - a if split else 0)):
                oy, ox = (y, x + j) if j < a else (y + 1, j - a)
                assert (oy, ox) not in seen
                seen.add((oy, ox))
                for kr, ks in itertools.product(range(r), range(r)):
                    col = chunks.pe_column(cfg, j, ks, stride, j >= a)
                    assert col < chunks.storage_columns(cfg)
                    got = store[(i * cfg.max_kernel + kr, col)]
                    want = int(padded[oy * stride + kr, ox * stride + ks])
                    assert (got or 0) == want, (t, i, j, kr, ks)
    assert seen == {(y, x) for y in range(layer.e) for x in range(layer.f)}


def test_host_picks_the_faster_mapping():
    rng = np.random.default_rng(2)
    cfg = ArrayConfig(chunks=1, epilogue=0)
    for h in (7, 13, 16):
        layer = Layer(rng.integers(-3, 4, (8, 4, 3, 3)), rng.integers(-9, 9, (4, h, h)), 1, 1)
        best = min(simulate(encode(layer, cfg, m)).busy_cycles for m in ("tile", "chunks"))
        assert simulate(encode(layer, cfg)).busy_cycles == best
    assert encode(layer, ArrayConfig(epilogue=0, chunks=0)).chunks is False


def test_chunk_mapping_errors():
    layer = Layer(np.ones((1, 1, 3, 3), dtype=np.int64), np.ones((1, 5, 5), dtype=np.int64), 1, 0)
    with pytest.raises(ValueError, match="built without it"):
        encode(layer, ArrayConfig(epilogue=0, chunks=0), "chunks")
    with pytest.raises(ValueError, match="3 wide, less than the array's 4 columns"):
        encode(layer, ArrayConfig(chunks=1, epilogue=0), "chunks")
    with pytest.raises(ValueError, match="unknown mapping"):
        encode(layer, ArrayConfig(epilogue=0), "raster")
