"""Group-magnitude pruning of convolution weights ``W[M][C][R][S]`` at every granularity of the brief.

Why this module exists: the accelerator's dataflows differ only in *which zeros they can name*, so the
sweeps need the same layer pruned to the same sparsity at different granularities. Pruning here is
deliberately plain -- rank groups by magnitude, zero the smallest -- because the point is to compare
hardware, not to win accuracy.

Granularities (the group that is pruned together):

========  ==========================================  =============================================
name      group                                        notes
========  ==========================================  =============================================
element   one weight ``W[m,c,r,s]``                    fine-grained, 0-D
vector    one kernel row ``W[m,c,r,:]``                1-D
kernel    one kernel ``W[m,c,:,:]``                    2-D
filter    one filter ``W[m,:,:,:]``                    shrinks M
channel   one input channel ``W[:,c,:,:]``             shrinks C
strided   kernel positions ``k = r*S + s`` with        ``(sigma, phi)`` shared by all filters reading
          ``k % sigma != phi`` are zeroed              channel ``c``: whole im2col columns vanish
block     ``bm x bc`` kernels after permuting filters  TETRIS (Ji et al., NeurIPS 2018)
          and channels
balanced  all but the ``keep`` largest ``|w|`` in      at most ``keep`` non-zeros per kernel (S2TA,
          each kernel ``W[m,c,:,:]``                   N:M); whole kernels pruned on top if short
========  ==========================================  =============================================

Magnitude is the L2 norm of a group (default) or its L1 norm (``norm="l1"``). Sparsity is always the
fraction of zero *weights*, whatever the granularity.

Rounding rule
-------------
Groups are pruned in ascending norm order (stable sort, so equal norms go in index order; indices are
row-major over the group grid). The number pruned is the count ``k`` whose pruned weight total is
closest to ``target * W.size``, ties going to the SMALLER ``k``. For equal-size groups that is simply
``k = round_half_down(target * n_groups)``, so the achieved sparsity is within half a group of the
target (hence never above it by more than one group). Ties prune less because a zeroed weight is lost
for good while the target is a soft goal: a layer that is a single block is left whole at 50 %, not
deleted. Weights that were already zero inside *kept* groups still count as zeros, so on a layer that
arrives partly sparse the achieved sparsity can exceed the target.

Strided
-------
``sigma`` is either given or chosen as ``round_half_down(1 / (1 - sparsity))`` clipped to ``[1, R*S]``;
each channel then takes the phase ``phi`` in ``[0, sigma)`` that keeps the most magnitude of that
channel's weights (ties: smallest ``phi``). The pattern alone reaches only the sparsities a kernel
size allows (a 3x3 kernel with ``sigma = 4`` keeps 3 positions at ``phi = 0`` and 2 otherwise). When
it falls short of the target, whole kernels are pruned on top (smallest norm of what the pattern
kept, same rounding rule), as Anwar et al. combine granularities: zero kernels keep the "no
per-weight index" property, since the strided dataflow skips them with its kernel index. Never
single weights.

Balanced
--------
Each kernel ``W[m,c,:,:]`` keeps only its ``keep`` largest weights by ``|w|`` (ties: lower position
``k = r*S + s`` first), a density bound per kernel like S2TA's density-bound blocks and NVIDIA's N:M
sparsity. Why: a PE with ``V`` multiply lanes consumes up to ``V`` weights of one kernel per cycle;
element sparsity leaves lanes idle whenever a kernel's non-zero count is not a multiple of ``V``, while
balanced pruning with ``keep`` a multiple of ``V`` wastes no lane. ``keep`` is either given (``1 <= keep
<= R*S``) or chosen as ``max(1, round_half_down((1 - sparsity) * R*S))``. The bound alone reaches only
multiples of ``1 / (R*S)``; when it falls short of the target, whole kernels are pruned on top exactly as
for strided (smallest norm of what the bound kept, same rounding rule). It never prunes less than the
bound, so an explicit ``keep`` below ``(1 - sparsity) * R*S`` overshoots the target. A kernel with fewer
than ``keep`` non-zeros keeps all of them (its mask then also marks some zeros as kept; zeros count as
zeros, see the rounding rule), and an all-zero kernel stays zero: pruning never adds weights. A group
is one kernel: ``PruneResult.groups_pruned`` counts the kernels zeroed by the top-up, and
``PruneResult.keep`` is the bound used.

Block (TETRIS)
--------------
The reordering is the TETRIS search of :mod:`golden.prune.tetris`. Blocks are pruned in the *reordered*
tensor and the permutation is then undone, so ``PruneResult.weights`` computes exactly the same layer
function as the block-pruned reordered tensor but its mask is generally not block-shaped in the original
order. ``reordered = W[filter_perm][:, channel_perm]`` recovers the block structure.

The command line, ``python -m golden.prune``, is :mod:`golden.prune.cli`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .tetris import block_sizes, block_starts, permutations

GRANULARITIES = ("element", "vector", "kernel", "filter", "channel", "strided", "block", "balanced")

# Axes of W[M][C][R][S] summed into one group, for the granularities whose groups are axis-aligned.
_REDUCE_AXES: dict[str, tuple[int, ...]] = {
    "element": (),
    "vector": (3,),
    "kernel": (2, 3),
    "filter": (1, 2, 3),
    "channel": (0, 2, 3),
    "strided": (0,),  # group_norms only: one im2col column W[:, c, r, s]
    "balanced": (),  # group_norms only: one weight |W[m, c, r, s]|, ranked within its kernel
}

# What each per-granularity pruner returns: mask, groups pruned, number of groups, extra result arrays.
_Pruned = tuple[np.ndarray, int, int, dict[str, np.ndarray]]


@dataclass(frozen=True, eq=False)
class PruneResult:
    """The outcome of :func:`prune`.

    ``eq=False`` because the fields are arrays: element-wise ``==`` has no single truth value.

    Attributes
    ----------
    weights : np.ndarray
        Pruned weights, same shape and dtype as the input ``(M, C, R, S)``; for ``block`` in the
        ORIGINAL filter/channel order.
    mask : np.ndarray
        Boolean, same shape; ``True`` = kept. Pruned positions are exactly the ``False`` ones.
    granularity : str
        One of :data:`GRANULARITIES`.
    target_sparsity : float
        The requested fraction of zero weights.
    filter_perm, channel_perm : np.ndarray or None
        ``block`` only: ``W[filter_perm][:, channel_perm]`` is the tensor whose ``bm x bc`` kernel
        blocks were pruned.
    stride_pattern : np.ndarray or None
        ``strided`` only: int array ``(C, 2)`` of ``(sigma, phi)`` per input channel.
    groups_pruned, n_groups : int
        How many groups were zeroed, out of how many (for ``strided`` a group is one im2col column
        ``W[:, c, r, s]``; for ``block`` one block of the reordered tensor; for ``balanced`` one kernel
        ``W[m, c, :, :]``, so ``groups_pruned`` counts the kernels zeroed by the top-up: the per-kernel
        bound alone never zeroes a whole kernel).
    keep : int or None
        ``balanced`` only: the per-kernel bound used (given, or derived from the target sparsity).
    """

    weights: np.ndarray
    mask: np.ndarray
    granularity: str
    target_sparsity: float
    filter_perm: np.ndarray | None
    channel_perm: np.ndarray | None
    stride_pattern: np.ndarray | None
    groups_pruned: int = 0
    n_groups: int = 0
    keep: int | None = None

    @property
    def sparsity(self) -> float:
        """Achieved fraction of zero weights (including weights that were zero before pruning)."""
        return 1.0 - np.count_nonzero(self.weights) / self.weights.size


# --------------------------------------------------------------------------------------------------
# validation


def _check_weights(weights: np.ndarray) -> np.ndarray:
    """Return ``weights`` as an ndarray, or raise if it is not a finite, non-empty numeric 4-D tensor."""
    w = np.asarray(weights)
    if w.ndim != 4:
        raise ValueError(f"weights must be a 4-D array (M, C, R, S), not shape {w.shape}")
    if w.dtype.kind not in "iuf":
        raise ValueError(f"weights must have an integer or float dtype, not {w.dtype}")
    if w.size == 0:
        raise ValueError(f"weights must not be empty, got shape {w.shape}")
    if w.dtype.kind == "f" and not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or infinity; clean the layer before pruning")
    return w


def _check_granularity(granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; choose one of {', '.join(GRANULARITIES)}")


def _check_norm(norm: str) -> None:
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', not {norm!r}")


def _check_sparsity(sparsity: float) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.integer, np.floating)):
        raise ValueError(f"sparsity must be a number in [0, 1), not {sparsity!r}")
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), not {sparsity}; 1 would delete the whole layer")
    return float(sparsity)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_block(block: Sequence[int]) -> tuple[int, int]:
    try:
        ok = len(block) == 2 and all(_is_int(b) and b >= 1 for b in block)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"block must be two positive integers (bm, bc), e.g. (4, 4), not {block!r}")
    return int(block[0]), int(block[1])


def _check_sigma(sigma: int, positions: int) -> int:
    if not _is_int(sigma) or not 1 <= sigma <= positions:
        raise ValueError(f"sigma must be an integer in [1, R*S={positions}], not {sigma!r}")
    return int(sigma)


def _check_keep(keep: int, positions: int) -> int:
    if not _is_int(keep) or not 1 <= keep <= positions:
        raise ValueError(f"keep must be an integer in [1, R*S={positions}], not {keep!r}")
    return int(keep)


# --------------------------------------------------------------------------------------------------
# magnitudes and the rounding rule


def _magnitude(w: np.ndarray, axes: tuple[int, ...], norm: str) -> np.ndarray:
    """Additive magnitude over ``axes`` (sum |w| for L1, sum w^2 for L2), float64, keepdims.

    Additive so block sums can be formed by adding kernel sums; float64 so int weights cannot overflow.
    """
    a = np.abs(w.astype(np.float64))
    if norm == "l2":
        a = a * a
    return np.sum(a, axis=axes, keepdims=True)


def _to_norm(magnitude: np.ndarray, norm: str) -> np.ndarray:
    """Turn an additive magnitude into the norm itself (sqrt for L2)."""
    return np.sqrt(magnitude) if norm == "l2" else magnitude


def _round_half_down(x: float) -> int:
    """Nearest integer, exact halves going down (tolerant of float noise such as 1 / 0.4 = 2.5000...1)."""
    return int(math.ceil(x - 0.5 - 1e-9))


def _n_to_prune(sizes_in_order: np.ndarray, target_weights: float) -> int:
    """Number ``k`` of leading groups whose total size is closest to ``target_weights``; ties -> smaller k.

    A small tolerance makes ``0.3 * 5`` count as the tie it is in exact arithmetic, so equal-size groups
    follow ``round_half_down(target * n_groups)`` exactly as documented.
    """
    cum = np.concatenate(([0.0], np.cumsum(sizes_in_order, dtype=np.float64)))
    err = np.abs(cum - target_weights)
    best = err <= err.min() + 1e-9 * max(cum[-1], 1.0)
    return int(np.flatnonzero(best)[0])


def _prune_smallest(norms: np.ndarray, sizes: np.ndarray, target: float, total: int) -> np.ndarray:
    """Keep-flags (same shape as ``norms``) after zeroing the smallest groups to the target."""
    order = np.argsort(norms.ravel(), kind="stable")
    k = _n_to_prune(np.broadcast_to(sizes, norms.shape).ravel()[order], target * total)
    keep = np.ones(norms.size, dtype=bool)
    keep[order[:k]] = False
    return keep.reshape(norms.shape)


def _block_sum(kernel_mag: np.ndarray, bm: int, bc: int) -> np.ndarray:
    """Sum an ``(M, C)`` kernel-magnitude matrix over ``bm x bc`` tiles (last tiles may be partial)."""
    m, c = kernel_mag.shape
    rows = np.add.reduceat(kernel_mag, block_starts(m, bm), axis=0)
    return np.add.reduceat(rows, block_starts(c, bc), axis=1)


def group_norms(weights: np.ndarray, granularity: str, norm: str = "l2", *,
                block: Sequence[int] = (4, 4)) -> np.ndarray:
    """Norm of every group of ``weights`` at ``granularity``: the quantity :func:`prune` ranks by.

    Parameters
    ----------
    weights : array_like, shape (M, C, R, S)
    granularity : str
        One of :data:`GRANULARITIES`.
    norm : {"l2", "l1"}
    block : (int, int)
        ``(bm, bc)`` for ``block``; ignored otherwise.

    Returns
    -------
    np.ndarray of float64 with shape ``(M, C, R, S)`` for element, ``(M, C, R)`` vector,
    ``(M, C)`` kernel, ``(M,)`` filter, ``(C,)`` channel, ``(C, R, S)`` strided (one im2col column
    ``W[:, c, r, s]`` per entry, the unit the strided phase choice weighs),
    ``(ceil(M/bm), ceil(C/bc))`` block (in the given, unpermuted order) and ``(M, C, R, S)`` balanced
    (``|w|``, what the per-kernel bound ranks within each kernel; the top-up then ranks kernels by the
    norm of what the bound kept, which depends on ``keep``).
    """
    w = _check_weights(weights)
    _check_granularity(granularity)
    _check_norm(norm)
    if granularity == "block":
        bm, bc = _check_block(block)
        return _to_norm(_block_sum(_magnitude(w, (2, 3), norm)[:, :, 0, 0], bm, bc), norm)
    axes = _REDUCE_AXES[granularity]
    return _to_norm(np.squeeze(_magnitude(w, axes, norm), axis=axes), norm)


def group_index(shape: Sequence[int], granularity: str, *, block: Sequence[int] = (4, 4)) -> np.ndarray:
    """For every weight of a ``(M, C, R, S)`` tensor, the flat index of its group in :func:`group_norms`' output.

    Why: a training penalty over groups (SSL's group Lasso in ``host.train``) must sum exactly the groups
    this module ranks, on arrays NumPy cannot see inside (JAX); a segment sum over these indices does.
    ``sqrt(bincount(index, w**2))`` is ``group_norms(w, granularity).ravel()`` for every granularity.
    """
    _check_granularity(granularity)
    if len(shape) != 4 or any(not _is_int(d) or d < 1 for d in shape):
        raise ValueError(f"shape must be four positive integers (M, C, R, S), not {tuple(shape)!r}")
    m, c = shape[:2]
    if granularity == "block":
        bm, bc = _check_block(block)
        grid = (np.arange(m)[:, None] // bm) * -(-c // bc) + np.arange(c)[None, :] // bc
        return np.broadcast_to(grid[:, :, None, None], tuple(shape)).copy()
    axes = _REDUCE_AXES[granularity]
    grid = tuple(1 if d in axes else int(n) for d, n in enumerate(shape))
    return np.broadcast_to(np.arange(math.prod(grid)).reshape(grid), tuple(shape)).copy()


# --------------------------------------------------------------------------------------------------
# per-granularity pruning; each returns (mask, groups_pruned, n_groups, extras)


def _prune_axis_groups(w: np.ndarray, granularity: str, target: float, norm: str) -> _Pruned:
    """element / vector / kernel / filter / channel: equal-size groups along fixed axes."""
    axes = _REDUCE_AXES[granularity]
    norms = _to_norm(_magnitude(w, axes, norm), norm)  # keepdims: broadcasts back onto w
    group_size = w.size // norms.size
    keep = _prune_smallest(norms, np.array(group_size), target, w.size)
    mask = np.broadcast_to(keep, w.shape).copy()
    return mask, int(keep.size - np.count_nonzero(keep)), int(keep.size), {}


def _top_up_with_kernels(w: np.ndarray, mask: np.ndarray, target: float, norm: str) -> int:
    """Zero whole kernels of ``mask`` (in place) when the pattern in it prunes fewer than the target.

    Kernels go in ascending norm of what ``mask`` keeps of them (stable), as many as the rounding rule
    says for the shortfall, each counting the weights ``mask`` keeps of it. Shared by ``strided`` and
    ``balanced``; returns the number of kernels zeroed.
    """
    m, c = w.shape[:2]
    short = target * w.size - (w.size - np.count_nonzero(mask))
    if short <= 0:
        return 0
    kernel_norms = _to_norm(_magnitude(np.where(mask, w, 0), (2, 3), norm), norm).reshape(m, c)
    sizes = np.count_nonzero(mask, axis=(2, 3))
    order = np.argsort(kernel_norms.ravel(), kind="stable")
    n = _n_to_prune(sizes.ravel()[order].astype(np.float64), short)
    drop = np.zeros(m * c, dtype=bool)
    drop[order[:n]] = True
    mask &= ~drop.reshape(m, c)[:, :, None, None]
    return n


def _strided_sigma(sparsity: float, positions: int) -> int:
    """Default stride: keeping one position in sigma gives sparsity about 1 - 1/sigma."""
    return min(max(_round_half_down(1.0 / (1.0 - sparsity)), 1), positions)


def _prune_strided(w: np.ndarray, target: float, norm: str, sigma: int | None) -> _Pruned:
    m, c, r, s = w.shape
    positions = r * s
    sigma = _strided_sigma(target, positions) if sigma is None else _check_sigma(sigma, positions)
    column_mag = _magnitude(w, (0,), norm).reshape(c, positions)  # additive, so kept sums add up
    k = np.arange(positions)
    phase_of_k = (k[None, :] % sigma) == np.arange(sigma)[:, None]  # (sigma, positions)
    kept_by_phase = column_mag @ phase_of_k.T.astype(np.float64)  # (C, sigma)
    phi = np.argmax(kept_by_phase, axis=1)  # first maximum: smallest phi on ties
    keep_cols = (k[None, :] % sigma) == phi[:, None]  # (C, positions)
    mask = np.broadcast_to(keep_cols.reshape(1, c, r, s), w.shape).copy()
    pattern = np.stack([np.full(c, sigma, dtype=np.int64), phi.astype(np.int64)], axis=1)
    pruned = int(keep_cols.size - np.count_nonzero(keep_cols))
    _top_up_with_kernels(w, mask, target, norm)  # see "Strided" in the module docstring
    return mask, pruned, int(keep_cols.size), {"stride_pattern": pattern}


def _balanced_keep(sparsity: float, positions: int) -> int:
    """Default per-kernel bound: keeping ``keep`` of ``R*S`` gives sparsity about ``1 - keep / (R*S)``."""
    return max(1, _round_half_down((1.0 - sparsity) * positions))


def _prune_balanced(w: np.ndarray, target: float, norm: str, keep: int) -> _Pruned:
    m, c, r, s = w.shape
    a = np.abs(w.astype(np.float64)).reshape(m * c, r * s)  # float64: |int8(-128)| does not wrap
    top = np.argsort(-a, axis=1, kind="stable")[:, :keep]  # stable: equal |w| go lower k first
    flat = np.zeros(a.shape, dtype=bool)
    np.put_along_axis(flat, top, True, axis=1)
    mask = flat.reshape(w.shape)
    pruned = _top_up_with_kernels(w, mask, target, norm)  # see "Balanced" in the module docstring
    return mask, pruned, m * c, {}


def _block_keep(kernel_mag: np.ndarray, bm: int, bc: int, target: float, norm: str,
                rs: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Block-prune an already reordered ``(M, C)`` kernel-magnitude matrix.

    Returns ``(keep, score)``: block keep-flags ``(ceil(M/bm), ceil(C/bc))`` and the score the
    reordering maximizes, ``(-miss, retained)``. ``retained`` is the additive magnitude that survives;
    ``miss`` is how many weights the pruning is off target. With partial edge blocks the number of
    pruned weights depends on the permutation, and a permutation must not win merely by pruning less,
    so closeness to the target is compared first (it is the same for every permutation when all blocks
    are full).
    """
    m, c = kernel_mag.shape
    sums = _block_sum(kernel_mag, bm, bc)
    sizes = np.outer(block_sizes(m, bm), block_sizes(c, bc)) * rs
    keep = _prune_smallest(_to_norm(sums, norm), sizes, target, m * c * rs)
    miss = round(abs(float(sizes[~keep].sum()) - target * m * c * rs), 6)
    return keep, (-miss, float(sums[keep].sum()))


def _prune_block(w: np.ndarray, target: float, norm: str, block: tuple[int, int], seed: int) -> _Pruned:
    m, c, r, s = w.shape
    bm, bc = block
    kmag = _magnitude(w, (2, 3), norm)[:, :, 0, 0]

    def evaluate(fp: np.ndarray, cp: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        return _block_keep(kmag[np.ix_(fp, cp)], bm, bc, target, norm, r * s)

    fperm, cperm = permutations(kmag, bm, bc, evaluate, seed)
    keep_blocks, _ = _block_keep(kmag[np.ix_(fperm, cperm)], bm, bc, target, norm, r * s)
    keep_reordered = np.repeat(np.repeat(keep_blocks, bm, axis=0)[:m], bc, axis=1)[:, :c]
    keep_kernels = np.empty((m, c), dtype=bool)
    keep_kernels[np.ix_(fperm, cperm)] = keep_reordered  # undo: reordered[i, j] = W[fperm[i], cperm[j]]
    mask = np.broadcast_to(keep_kernels[:, :, None, None], w.shape).copy()
    pruned = int(keep_blocks.size - np.count_nonzero(keep_blocks))
    return mask, pruned, int(keep_blocks.size), {"filter_perm": fperm, "channel_perm": cperm}


def prune(weights: np.ndarray, granularity: str, sparsity: float, *, norm: str = "l2",
          block: Sequence[int] = (4, 4), sigma: int | None = None, keep: int | None = None,
          seed: int = 0) -> PruneResult:
    """Zero the smallest-magnitude groups of ``weights`` until ``sparsity`` of the weights are zero.

    Parameters
    ----------
    weights : array_like, shape (M, C, R, S)
        Integer or float weights; not modified.
    granularity : str
        One of :data:`GRANULARITIES` (see the module docstring for the groups).
    sparsity : float
        Target fraction of zero weights, in ``[0, 1)``. Reached to within one group by the rounding
        rule in the module docstring; for ``strided`` it only picks ``sigma`` when ``sigma`` is None,
        for ``balanced`` ``keep`` when ``keep`` is None (both then top up with whole kernels).
    norm : {"l2", "l1"}
        Group magnitude used for ranking.
    block : (int, int)
        ``(bm, bc)``: filters x channels per block, for ``block`` only. Partial edge blocks are allowed.
    sigma : int, optional
        ``strided`` only: keep kernel positions ``k`` with ``k % sigma == phi``; ``1 <= sigma <= R*S``.
    keep : int, optional
        ``balanced`` only: weights kept per kernel (largest ``|w|``); ``1 <= keep <= R*S``.
    seed : int
        Seeds the random restarts of the ``block`` reordering; the result is a pure function of the
        arguments, seed included. Other granularities use no randomness.

    Returns
    -------
    PruneResult

    Raises
    ------
    ValueError
        One line naming the bad argument and what would be accepted.
    """
    w = _check_weights(weights)
    _check_granularity(granularity)
    target = _check_sparsity(sparsity)
    _check_norm(norm)
    blk = _check_block(block)
    if sigma is not None and granularity != "strided":
        raise ValueError(f"sigma only applies to granularity 'strided', not {granularity!r}; drop it")
    if keep is not None and granularity != "balanced":
        raise ValueError(f"keep only applies to granularity 'balanced', not {granularity!r}; drop it")
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer, not {seed!r}")

    bound = None
    if granularity == "strided":
        mask, pruned, n_groups, extras = _prune_strided(w, target, norm, sigma)
    elif granularity == "balanced":
        positions = w.shape[2] * w.shape[3]
        bound = _balanced_keep(target, positions) if keep is None else _check_keep(keep, positions)
        mask, pruned, n_groups, extras = _prune_balanced(w, target, norm, bound)
    elif granularity == "block":
        mask, pruned, n_groups, extras = _prune_block(w, target, norm, blk, int(seed))
    else:
        mask, pruned, n_groups, extras = _prune_axis_groups(w, granularity, target, norm)
    return PruneResult(
        weights=np.where(mask, w, np.zeros((), dtype=w.dtype)),
        mask=mask,
        granularity=granularity,
        target_sparsity=target,
        filter_perm=extras.get("filter_perm"),
        channel_perm=extras.get("channel_perm"),
        stride_pattern=extras.get("stride_pattern"),
        groups_pruned=pruned,
        n_groups=n_groups,
        keep=bound,
    )
