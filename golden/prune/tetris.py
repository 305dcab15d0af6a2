"""TETRIS reordering (Ji et al., NeurIPS 2018): permute filters and channels so that block pruning keeps more.

Block pruning zeroes whole ``bm x bc`` tiles of kernels; it can only keep more magnitude if a
reordering first gathers small kernels into the same tiles. :func:`permutations` searches for that
pair of permutations; how a reordered tensor is block-pruned and scored is ``golden.prune``'s
(:func:`golden.prune._block_keep`, given to the search as ``evaluate``), so this module holds the
search alone: the block geometry, a capacity-limited assignment, and the alternating optimisation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RESTARTS = 4
"""Random starting permutations, on top of the identity and magnitude-sorted starts."""
ROUNDS = 10
"""Alternating filter/channel passes per start (stops earlier when a round does not improve)."""

Score = tuple[float, float]
Evaluate = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, Score]]
"""``evaluate(filter_perm, channel_perm) -> (block keep-mask, score)``: block pruning of the reordered tensor."""


def block_starts(n: int, b: int) -> np.ndarray:
    """First index of every block of ``b`` along an axis of ``n`` (the last block may be partial)."""
    return np.arange(0, n, b)


def block_sizes(n: int, b: int) -> np.ndarray:
    """Length of every block of ``b`` along an axis of ``n``."""
    starts = block_starts(n, b)
    return np.minimum(starts + b, n) - starts



def _greedy_assign(value: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Assign each item (row of ``value``) to a slot (column) with limited capacity, greedily.

    Items that care most -- largest gap between their best and second-best slot -- choose first and
    take their best slot that still has room. Deterministic: ties go to the lower item, then slot.
    """
    n_items, n_slots = value.shape
    if n_slots > 1:
        top2 = -np.partition(-value, 1, axis=1)[:, :2]
        regret = top2[:, 0] - top2[:, 1]
    else:
        regret = np.zeros(n_items)
    remaining = capacity.copy()
    slot = np.empty(n_items, dtype=np.int64)
    for item in np.lexsort((np.arange(n_items), -regret)):
        choice = int(np.argmax(np.where(remaining > 0, value[item], -np.inf)))
        slot[item] = choice
        remaining[choice] -= 1
    return slot


def _improve_by_swaps(value: np.ndarray, slot: np.ndarray, n_slots: int, max_iter: int = 50) -> np.ndarray:
    """Pairwise-swap refinement of an assignment: the greedy pass alone often stalls one swap short.

    Swapping item ``a`` (slot ``p``) with item ``b`` (slot ``q``) gains ``D[a, q] + D[b, p]`` where
    ``D[i, t] = value[i, t] - value[i, slot[i]]``. The best swap between two slots therefore only needs
    the best ``D`` per (slot, slot) pair -- O(items x slots), not O(items^2) -- and swaps between
    disjoint slot pairs do not interact, so each iteration applies the best swap of many slot pairs.
    """
    n = slot.size
    slot = slot.copy()
    tol = 1e-12 * (float(np.abs(value).max()) + 1.0)
    for _ in range(max_iter):
        d = value - value[np.arange(n), slot][:, None]
        order = np.argsort(slot, kind="stable")
        seg = np.searchsorted(slot[order], np.arange(n_slots))
        ends = np.append(seg[1:], n)
        best = np.maximum.reduceat(d[order], seg, axis=0)  # best[p, q]: best gain of moving p -> q
        gain = np.triu(best + best.T, k=1)
        p_idx, q_idx = np.nonzero(gain > tol)
        if p_idx.size == 0:
            break
        used = np.zeros(n_slots, dtype=bool)
        for t in np.argsort(-gain[p_idx, q_idx], kind="stable"):
            p, q = int(p_idx[t]), int(q_idx[t])
            if used[p] or used[q]:
                continue
            # members as of the iteration start: still exact, each slot is touched once per iteration
            in_p, in_q = order[seg[p]:ends[p]], order[seg[q]:ends[q]]
            a, b = in_p[np.argmax(d[in_p, q])], in_q[np.argmax(d[in_q, p])]
            slot[a], slot[b] = q, p
            used[p] = used[q] = True
    return slot


def _assign(value: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Permutation placing items into capacity-limited slots to maximize the summed ``value``.

    Greedy by regret, then pairwise swaps; items are listed slot by slot (ascending index inside a slot).
    """
    slot = _improve_by_swaps(value, _greedy_assign(value, capacity), capacity.size)
    return np.lexsort((np.arange(slot.size), slot))


def _reassign_filters(kmag: np.ndarray, fperm: np.ndarray, cperm: np.ndarray, keep: np.ndarray,
                      bm: int, bc: int) -> np.ndarray:
    """Move each filter to the block row whose *kept* blocks hold most of its magnitude."""
    m, c = kmag.shape
    per_block_col = np.add.reduceat(kmag[:, cperm], block_starts(c, bc), axis=1)  # (M, nbc)
    value = per_block_col @ keep.T.astype(np.float64)  # (M, nbm)
    return _assign(value, block_sizes(m, bm))


def _reassign_channels(kmag: np.ndarray, fperm: np.ndarray, cperm: np.ndarray, keep: np.ndarray,
                       bm: int, bc: int) -> np.ndarray:
    """Move each channel to the block column whose *kept* blocks hold most of its magnitude."""
    m, c = kmag.shape
    per_block_row = np.add.reduceat(kmag[fperm, :], block_starts(m, bm), axis=0)  # (nbm, C)
    value = per_block_row.T @ keep.astype(np.float64)  # (C, nbc)
    return _assign(value, block_sizes(c, bc))


def permutations(kmag: np.ndarray, bm: int, bc: int, evaluate: Evaluate,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Filter and channel permutations that let block pruning keep the most magnitude (TETRIS-style).

    Block pruning after a permutation can only help if the permutation gathers small kernels into the
    same ``bm x bc`` tiles. Finding the best pair of permutations is combinatorial, so this follows the
    alternating scheme of Ji et al. (optimize one dimension's permutation with the other dimension and
    the block mask fixed), with a greedy assignment standing in for an exact one:

    1. prune blocks of the current reordered kernel-magnitude matrix (this fixes a block keep-mask);
    2. with channels and the keep-mask fixed, reassign every filter to the block row whose kept blocks
       capture most of its magnitude (capacity ``bm`` per block row; greedy by regret, then improved
       by pairwise swaps, see :func:`_improve_by_swaps`);
    3. re-prune, then do the same for channels against block columns;
    4. repeat until a round no longer raises the score (at most :data:`ROUNDS`).

    ``evaluate(filter_perm, channel_perm)`` does step 1 for a pair of permutations: it returns the block
    keep-mask ``(ceil(M/bm), ceil(C/bc))`` and the score the search maximizes (``golden.prune``'s block
    pruning: closeness to the target, then the retained additive magnitude). The search starts from the
    identity, from filters/channels sorted by total magnitude, and from :data:`RESTARTS` random
    permutations drawn from ``seed``; the highest-scoring pair wins, the earliest on ties. Because the
    identity is a candidate, reordering never scores less than plain block pruning.
    """
    m, c = kmag.shape
    rng = np.random.default_rng(seed)
    starts = [(np.arange(m), np.arange(c)),
              (np.argsort(kmag.sum(axis=1), kind="stable"), np.argsort(kmag.sum(axis=0), kind="stable"))]
    starts += [(rng.permutation(m), rng.permutation(c)) for _ in range(RESTARTS)]
    best_fp, best_cp = starts[0]
    best = evaluate(best_fp, best_cp)[1]
    for fp, cp in starts:
        keep, score = evaluate(fp, cp)
        for _ in range(ROUNDS):
            round_start = score
            for step in (_reassign_filters, _reassign_channels):
                new = step(kmag, fp, cp, keep, bm, bc)
                fp, cp = (new, cp) if step is _reassign_filters else (fp, new)
                keep, score = evaluate(fp, cp)
                if score > best:
                    best, best_fp, best_cp = score, fp, cp
            if score <= round_start:
                break
    return best_fp.astype(np.int64), best_cp.astype(np.int64)
