"""Tests for golden.prune: group shapes, targets, ranking, strided patterns, TETRIS reordering, balanced, CLI."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from golden.prune import GRANULARITIES, PruneResult, group_index, group_norms, prune
from golden.prune.cli import main

# Axes that one group spans, for the axis-aligned granularities.
GROUP_AXES = {
    "element": (),
    "vector": (3,),
    "kernel": (2, 3),
    "filter": (1, 2, 3),
    "channel": (0, 2, 3),
}
AXIS_GRANULARITIES = tuple(GROUP_AXES)
SPARSITIES = (0.0, 0.3, 0.5, 0.75, 0.9)


def rand_weights(shape=(8, 6, 3, 3), seed=0, dtype=np.int8):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    # no zeros, so the achieved sparsity is exactly what pruning did
    return (rng.integers(1, 101, size=shape) * rng.choice([-1, 1], size=shape)).astype(dtype)


def magnitude(w, norm):
    a = np.abs(np.asarray(w, dtype=np.float64))
    return a * a if norm == "l2" else a


def group_uniform(mask, axes):
    """True iff every group (spanning `axes`) is all-kept or all-pruned."""
    if not axes:
        return True
    return bool(np.array_equal(mask.all(axis=axes), mask.any(axis=axes)))


def tile(keep_blocks, bm, bc, m, c):
    return np.repeat(np.repeat(keep_blocks, bm, axis=0), bc, axis=1)[:m, :c]


def plain_block_kept(w, bm, bc, target, norm):
    """Reference: block pruning WITHOUT reordering, equal-size blocks only; returns kept magnitude."""
    km = magnitude(w, norm).sum(axis=(2, 3))
    m, c = km.shape
    blocks = km.reshape(m // bm, bm, c // bc, bc).sum(axis=(1, 3)).ravel()
    k = math.ceil(target * blocks.size - 0.5 - 1e-9)
    return blocks.sum() - blocks[np.argsort(blocks, kind="stable")[:k]].sum()


# ------------------------------------------------------------------------------------------ axis groups


@pytest.mark.parametrize("granularity", AXIS_GRANULARITIES)
@pytest.mark.parametrize("target", SPARSITIES)
def test_axis_granularity_reaches_target_with_group_shaped_mask(granularity, target):
    w = rand_weights()
    res = prune(w, granularity, target)
    axes = GROUP_AXES[granularity]
    n_groups = int(np.prod([s for i, s in enumerate(w.shape) if i not in axes]))
    group_size = w.size // n_groups
    assert res.n_groups == n_groups
    assert res.groups_pruned == math.ceil(target * n_groups - 0.5 - 1e-9)  # round half down
    assert abs(res.sparsity - target) * w.size <= group_size  # within one group
    assert group_uniform(res.mask, axes)
    assert res.mask.dtype == bool and res.mask.shape == w.shape
    np.testing.assert_array_equal(res.weights, np.where(res.mask, w, 0))
    assert res.granularity == granularity and res.target_sparsity == target
    assert res.filter_perm is None and res.channel_perm is None and res.stride_pattern is None
    assert res.keep is None


@pytest.mark.parametrize("granularity", AXIS_GRANULARITIES)
@pytest.mark.parametrize("norm", ("l1", "l2"))
def test_pruned_groups_are_the_smallest(granularity, norm):
    w = rand_weights(dtype=np.float32, seed=3)
    res = prune(w, granularity, 0.6, norm=norm)
    norms = group_norms(w, granularity, norm)
    kept = res.mask.all(axis=GROUP_AXES[granularity]) if GROUP_AXES[granularity] else res.mask
    kept = kept.reshape(norms.shape)
    assert norms[kept].min() >= norms[~kept].max()


def test_group_norms_shapes_and_values():
    w = rand_weights(shape=(5, 4, 3, 2), dtype=np.float64)
    expected = {"element": (5, 4, 3, 2), "vector": (5, 4, 3), "kernel": (5, 4), "filter": (5,),
                "channel": (4,), "strided": (4, 3, 2), "block": (2, 1), "balanced": (5, 4, 3, 2)}
    for g in GRANULARITIES:
        assert group_norms(w, g).shape == expected[g], g
    np.testing.assert_allclose(group_norms(w, "kernel"), np.sqrt((w**2).sum(axis=(2, 3))))
    np.testing.assert_allclose(group_norms(w, "vector", "l1"), np.abs(w).sum(axis=3))
    np.testing.assert_allclose(group_norms(w, "block", "l1", block=(4, 4))[1, 0], np.abs(w[4:]).sum())
    for norm in ("l1", "l2"):  # balanced ranks single weights inside each kernel: |w| under either norm
        np.testing.assert_allclose(group_norms(w, "balanced", norm), np.abs(w))


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_group_index_names_the_groups_group_norms_ranks(granularity):
    w = rand_weights(shape=(5, 6, 3, 2), dtype=np.float64)
    ids = group_index(w.shape, granularity, block=(2, 4))
    norms = group_norms(w, granularity, block=(2, 4)).ravel()
    np.testing.assert_allclose(np.sqrt(np.bincount(ids.ravel(), (w**2).ravel(), minlength=norms.size)), norms)
    with pytest.raises(ValueError, match=r"^shape must be four positive integers"):
        group_index((5, 6, 3), granularity)


def test_exact_ties_in_the_rounding_prune_less():
    assert prune(rand_weights(shape=(3, 2, 3, 3)), "filter", 0.5).groups_pruned == 1  # 1.5 -> 1
    assert prune(rand_weights(shape=(5, 2, 3, 3)), "filter", 0.3).groups_pruned == 1  # 0.3 * 5 = 1.5 -> 1
    whole = prune(rand_weights(shape=(3, 3, 3, 3)), "block", 0.5, block=(4, 4))  # one block: keep it
    assert whole.groups_pruned == 0 and whole.sparsity == 0.0
    assert prune(rand_weights(), "strided", 0.6).stride_pattern[0, 0] == 2  # 1 / 0.4 = 2.5 -> 2


def test_l1_and_l2_rank_differently():
    # kernel 0: nine ones (L1 = 9, L2 = 3); kernel 1: a single 4 (L1 = 4, L2 = 4)
    w = np.zeros((1, 2, 3, 3), dtype=np.int16)
    w[0, 0] = 1
    w[0, 1, 1, 1] = 4
    assert prune(w, "kernel", 0.5, norm="l2").mask[0, :, 0, 0].tolist() == [False, True]
    assert prune(w, "kernel", 0.5, norm="l1").mask[0, :, 0, 0].tolist() == [True, False]


def test_ties_are_broken_by_index_and_results_are_deterministic():
    w = np.ones((2, 2, 2, 2), dtype=np.int8)
    res = prune(w, "element", 0.25)
    assert np.flatnonzero(~res.mask.ravel()).tolist() == [0, 1, 2, 3]
    w = rand_weights(seed=7)
    for g in GRANULARITIES:
        a, b = prune(w, g, 0.5, seed=11), prune(w, g, 0.5, seed=11)
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.mask, b.mask)


def test_dtype_preserved_and_input_untouched():
    for dtype in (np.int8, np.int32, np.float32, np.float64):
        w = rand_weights(dtype=dtype)
        before = w.copy()
        res = prune(w, "kernel", 0.5)
        assert res.weights.dtype == w.dtype and res.weights.shape == w.shape
        np.testing.assert_array_equal(w, before)


def test_sparsity_counts_pre_existing_zeros():
    w = rand_weights()
    w[0] = 0  # one filter already dead: pruned first, so filter pruning stays exact
    res = prune(w, "filter", 0.25)
    assert not res.mask[0].any()
    assert res.sparsity == pytest.approx(2 / 8)
    assert isinstance(res, PruneResult)


# ------------------------------------------------------------------------------------------ strided


def test_strided_pattern_is_shared_per_channel_and_on_grid():
    w = rand_weights(shape=(6, 5, 3, 3), dtype=np.float32)
    res = prune(w, "strided", 0.5)  # sigma = round(1 / 0.5) = 2
    pattern = res.stride_pattern
    assert pattern.shape == (5, 2) and np.issubdtype(pattern.dtype, np.integer)
    k = np.arange(9).reshape(3, 3)
    for c, (sigma, phi) in enumerate(pattern):
        assert sigma == 2 and 0 <= phi < sigma
        expected = (k % sigma) == phi
        for m in range(6):  # on the grid, or a whole kernel topped up to reach the target
            assert np.array_equal(res.mask[m, c], expected) or not res.mask[m, c].any()
    assert res.n_groups == 5 * 9
    assert res.groups_pruned == sum(9 - len(range(phi, 9, sigma)) for sigma, phi in pattern)


def test_strided_phase_maximizes_kept_norm():
    w = rand_weights(shape=(4, 6, 3, 3), dtype=np.float64, seed=5)
    for norm in ("l1", "l2"):
        res = prune(w, "strided", 0.0, sigma=3, norm=norm)
        col = magnitude(w, norm).sum(axis=0).reshape(6, 9)
        for c, (sigma, phi) in enumerate(res.stride_pattern):
            kept = [col[c, np.arange(9) % sigma == p].sum() for p in range(sigma)]
            assert phi == int(np.argmax(kept))


@pytest.mark.parametrize(("target", "sigma", "sparsity"), [
    (0.0, 1, 0.0),
    (0.5, 2, 29 / 54),  # keeps 5 of 9 (phi = 0): 24/54; one 5-weight kernel more is closest to 27/54
    (0.66, 3, 6 / 9),  # round(1 / 0.34) = 3: keeps 3 of 9
    (0.95, 9, 51 / 54),  # 1 / 0.05 = 20, clipped to R*S = 9: 48/54; then 3 of the 6 one-weight kernels
])
def test_strided_default_sigma_and_kernel_top_up(target, sigma, sparsity):
    w = np.ones((2, 3, 3, 3), dtype=np.int8)  # all phases tie: phi = 0 everywhere
    res = prune(w, "strided", target)
    assert (res.stride_pattern[:, 0] == sigma).all()
    assert (res.stride_pattern[:, 1] == 0).all()
    assert res.sparsity == pytest.approx(sparsity)


def test_strided_top_up_prunes_whole_kernels_to_the_target():
    w = rand_weights(shape=(32, 32, 3, 3), seed=3)
    res = prune(w, "strided", 0.75, sigma=4)  # the pattern alone: 2 or 3 of 9 kept
    assert res.sparsity == pytest.approx(0.75, abs=0.005)
    k = np.arange(9).reshape(3, 3)
    for c, (sigma, phi) in enumerate(res.stride_pattern):
        for m in range(32):
            assert np.array_equal(res.mask[m, c], (k % sigma) == phi) or not res.mask[m, c].any()


def test_strided_explicit_sigma_and_1x1_kernel():
    w = rand_weights(shape=(3, 4, 1, 1))
    # sigma clipped to R*S = 1: the pattern prunes nothing, whole (1x1) kernels reach the target
    assert prune(w, "strided", 0.9).sparsity == pytest.approx(11 / 12)
    res = prune(rand_weights(shape=(3, 4, 5, 5)), "strided", 0.1, sigma=4)
    assert (res.stride_pattern[:, 0] == 4).all()


# ------------------------------------------------------------------------------------------ balanced


def balanced_reference(w, keep):
    """Reference per-kernel bound: the `keep` largest |w| of each kernel, ties to the lower position k."""
    m, c, r, s = w.shape
    mask = np.zeros((m, c, r * s), dtype=bool)
    for i in range(m):
        for j in range(c):
            flat = [abs(int(v)) if np.dtype(w.dtype).kind in "iu" else abs(float(v)) for v in w[i, j].ravel()]
            mask[i, j, sorted(range(r * s), key=lambda k: (-flat[k], k))[:keep]] = True
    return mask.reshape(w.shape)


def kernel_nonzeros(w):
    return np.count_nonzero(np.asarray(w).reshape(*w.shape[:2], -1), axis=2)


@pytest.mark.parametrize("keep", (1, 2, 3, 5, 9))
@pytest.mark.parametrize("dtype", (np.int8, np.float32))
def test_balanced_keeps_the_largest_weights_of_every_kernel(keep, dtype):
    w = rand_weights(shape=(7, 5, 3, 3), seed=keep, dtype=dtype)
    res = prune(w, "balanced", 0.0, keep=keep)  # target 0: the bound alone, no top-up
    np.testing.assert_array_equal(res.mask, balanced_reference(w, keep))
    assert (kernel_nonzeros(res.weights) == keep).all()  # rand_weights has no zeros
    np.testing.assert_array_equal(res.weights, np.where(res.mask, w, 0))
    assert res.weights.dtype == w.dtype
    assert res.sparsity == pytest.approx(1 - keep / 9)
    assert res.keep == keep and res.groups_pruned == 0 and res.n_groups == 7 * 5
    assert res.filter_perm is None and res.channel_perm is None and res.stride_pattern is None


def test_balanced_ties_go_to_the_lower_position():
    assert np.flatnonzero(prune(np.ones((1, 1, 3, 3), np.int8), "balanced", 0.0, keep=2).mask).tolist() == [0, 1]
    w = np.array([1, -2, 2, 0, 2, -1, 0, 0, 1], dtype=np.int8).reshape(1, 1, 3, 3)
    assert np.flatnonzero(prune(w, "balanced", 0.0, keep=1).mask).tolist() == [1]  # |-2| ties 2 and 2
    assert np.flatnonzero(prune(w, "balanced", 0.0, keep=3).mask).tolist() == [1, 2, 4]
    w = np.array([127, -128, 5, -128, 0, 0, 0, 0, 0], dtype=np.int8).reshape(1, 1, 3, 3)  # |-128| must not wrap
    assert np.flatnonzero(prune(w, "balanced", 0.0, keep=2).mask).tolist() == [1, 3]
    rng = np.random.default_rng(4)  # many ties: small integers, zeros included
    w = rng.integers(-3, 4, size=(6, 6, 3, 3)).astype(np.int16)
    np.testing.assert_array_equal(prune(w, "balanced", 0.0, keep=4).mask, balanced_reference(w, 4))


@pytest.mark.parametrize(("target", "keep"), [
    (0.0, 9),
    (0.3, 6),  # 6.3 -> 6
    (0.5, 4),  # 4.5 -> 4 (half down)
    (0.6, 4),  # 3.6 -> 4
    (0.9, 1),  # 0.9 -> 1
    (0.95, 1),  # 0.45 -> 0, raised to 1
])
def test_balanced_derives_keep_from_the_sparsity(target, keep):
    w = rand_weights(shape=(8, 8, 3, 3), seed=1)
    res = prune(w, "balanced", target)
    assert res.keep == keep
    assert kernel_nonzeros(res.weights).max() <= keep
    kept = res.mask.any(axis=(2, 3))  # kernels not zeroed by a top-up carry exactly the bound
    np.testing.assert_array_equal(res.mask[kept], balanced_reference(w, keep)[kept])
    if 1 - keep / 9 >= target:  # the bound alone reaches the target: no kernel on top
        assert res.groups_pruned == 0 and res.sparsity == pytest.approx(1 - keep / 9)


@pytest.mark.parametrize(("target", "keep"), [(0.9, 3), (0.75, 3), (0.8, 2), (0.9, None), (0.5, 6), (0.97, 1)])
@pytest.mark.parametrize("norm", ("l1", "l2"))
def test_balanced_tops_up_with_whole_kernels(target, keep, norm):
    w = rand_weights(shape=(16, 12, 3, 3), seed=2, dtype=np.float32)
    res = prune(w, "balanced", target, keep=keep, norm=norm)
    k = res.keep
    bound = prune(w, "balanced", 0.0, keep=k, norm=norm)  # the per-kernel bound without any top-up
    per_kernel = res.mask.reshape(16, 12, 9).sum(axis=2)
    assert set(np.unique(per_kernel)) <= {0, k}  # bound kept, or the whole kernel zeroed
    dropped = per_kernel == 0
    np.testing.assert_array_equal(res.mask, bound.mask & ~dropped[:, :, None, None])
    # the rounding rule on equal-size (k-weight) kernels: round_half_down(shortfall / k) of them
    short = target * w.size - (w.size - k * 16 * 12)
    assert res.groups_pruned == int(dropped.sum()) == math.ceil(short / k - 0.5 - 1e-9)
    assert res.n_groups == 16 * 12
    assert abs(res.sparsity - target) * w.size <= k / 2 + 1e-6  # within half a kernel of the target
    # the kernels on top are those whose kept part has the smallest norm
    kept_norms = group_norms(bound.weights, "kernel", norm)
    assert kept_norms[dropped].max() <= kept_norms[~dropped].min()


def test_balanced_prune_90_percent_with_three_per_kernel():
    w = rand_weights(shape=(32, 32, 3, 3), seed=3)
    res = prune(w, "balanced", 0.9, keep=3)
    assert kernel_nonzeros(res.weights).max() <= 3
    assert res.sparsity == pytest.approx(0.9, abs=1.5 / w.size)
    assert res.groups_pruned == math.ceil((0.9 * w.size - 6 * 32 * 32) / 3 - 0.5 - 1e-9)  # 700 of 1024


def test_balanced_keeps_only_what_the_bound_allows_when_keep_is_small():
    w = rand_weights(shape=(4, 4, 3, 3))
    res = prune(w, "balanced", 0.2, keep=2)  # the bound overshoots a low target; nothing is added back
    assert res.sparsity == pytest.approx(7 / 9) and res.groups_pruned == 0


def test_balanced_never_densifies_already_sparse_kernels():
    w = rand_weights(shape=(4, 5, 3, 3), seed=6)
    w[0, 0] = 0  # an all-zero kernel
    w[0, 1].flat[[0, 2, 3, 5, 6, 7, 8]] = 0  # two non-zeros (positions 1 and 4), fewer than keep
    w[1, 2].flat[[4]] = 0  # eight non-zeros
    for target, keep in ((0.0, 3), (0.6, 3), (0.9, 3), (0.5, None), (0.0, 9)):
        res = prune(w, "balanced", target, keep=keep)
        assert not np.any((res.weights != 0) & (w == 0)), (target, keep)  # no weight appears
        assert (kernel_nonzeros(res.weights) <= np.minimum(kernel_nonzeros(w), res.keep)).all()
        assert not res.weights[0, 0].any()
    res = prune(w, "balanced", 0.0, keep=3)
    np.testing.assert_array_equal(res.weights[0, 1], w[0, 1])  # keeps both of its non-zeros
    assert kernel_nonzeros(res.weights)[1, 2] == 3
    # on top-up, the all-zero kernel goes first (its kept part has norm 0) and counts its kept positions
    res = prune(w, "balanced", 123 / 180, keep=3)  # 120 of 180 pruned by the bound: one kernel of 3 short
    assert res.groups_pruned == 1 and not res.mask[0, 0].any() and res.mask[0, 1].any()


def test_balanced_1x1_kernels_reduce_to_kernel_pruning():
    w = rand_weights(shape=(3, 4, 1, 1))
    res = prune(w, "balanced", 0.9)
    assert res.keep == 1 and res.sparsity == pytest.approx(11 / 12)  # same as "kernel" at 0.9
    np.testing.assert_array_equal(res.mask, prune(w, "kernel", 0.9).mask)


# ------------------------------------------------------------------------------------------ block


def hidden_block_weights(seed, m=16, c=16, bm=4, bc=4):
    """Block-structured weights (half the blocks tiny), then filters/channels randomly shuffled."""
    rng = np.random.default_rng(seed)
    small = rng.permutation(np.arange((m // bm) * (c // bc)) < (m // bm) * (c // bc) // 2)
    small = small.reshape(m // bm, c // bc)
    scale = np.where(tile(small, bm, bc, m, c), 0.01, 1.0)
    w0 = rng.standard_normal((m, c, 3, 3)) * scale[:, :, None, None]
    return w0[rng.permutation(m)][:, rng.permutation(c)], float(small.mean())


def assert_block_structured(res, w, bm, bc):
    fp, cp = res.filter_perm, res.channel_perm
    m, c = w.shape[:2]
    assert sorted(fp.tolist()) == list(range(m)) and sorted(cp.tolist()) == list(range(c))
    kernel_keep = res.mask.all(axis=(2, 3))
    assert np.array_equal(kernel_keep, res.mask.any(axis=(2, 3)))  # whole kernels only
    reordered = kernel_keep[fp][:, cp]
    blocks = np.add.reduceat(np.add.reduceat(reordered.astype(int), np.arange(0, m, bm), 0),
                             np.arange(0, c, bc), 1)
    sizes = np.outer(np.diff(np.append(np.arange(0, m, bm), m)), np.diff(np.append(np.arange(0, c, bc), c)))
    assert np.all((blocks == 0) | (blocks == sizes))  # every block all-kept or all-pruned
    # undoing the permutation is exact: re-permuting the pruned weights gives the pruned reordered tensor
    keep4 = tile(blocks == sizes, bm, bc, m, c)[:, :, None, None]
    np.testing.assert_array_equal(res.weights[fp][:, cp], np.where(keep4, w[fp][:, cp], 0))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("norm", ("l1", "l2"))
def test_block_reordering_never_keeps_less_than_plain_blocks(seed, norm):
    w = rand_weights(shape=(16, 12, 3, 3), seed=seed, dtype=np.float64)
    res = prune(w, "block", 0.5, norm=norm, block=(4, 4), seed=seed)
    assert_block_structured(res, w, 4, 4)
    kept = magnitude(w, norm)[res.mask].sum()
    assert kept >= plain_block_kept(w, 4, 4, 0.5, norm) - 1e-9
    assert res.sparsity == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(3))
def test_block_reordering_recovers_hidden_blocks(seed):
    w, target = hidden_block_weights(seed)
    res = prune(w, "block", target, norm="l1", block=(4, 4))
    assert_block_structured(res, w, 4, 4)
    kept = np.abs(w)[res.mask].sum()
    assert kept > plain_block_kept(w, 4, 4, target, "l1") * 1.05  # strictly (and clearly) more
    big = np.abs(w)[np.abs(w).max(axis=(2, 3)) > 0.05].sum()  # roughly all magnitude of the large blocks
    assert kept >= 0.95 * big


def test_block_partial_edges_and_rectangular_blocks():
    w = rand_weights(shape=(10, 7, 3, 3), seed=2)
    res = prune(w, "block", 0.4, block=(4, 3))
    assert_block_structured(res, w, 4, 3)
    assert res.n_groups == 3 * 3
    assert abs(res.sparsity - 0.4) * w.size <= 4 * 3 * 9  # within one (largest) block


def test_block_is_deterministic_for_a_seed():
    w, target = hidden_block_weights(9)
    a, b = prune(w, "block", target, seed=1), prune(w, "block", target, seed=1)
    np.testing.assert_array_equal(a.filter_perm, b.filter_perm)
    np.testing.assert_array_equal(a.channel_perm, b.channel_perm)


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(weights=np.ones((3, 3))), r"4-D array \(M, C, R, S\), not shape \(3, 3\)"),
    (dict(weights=np.ones((0, 2, 3, 3))), "must not be empty"),
    (dict(weights=np.ones((1, 1, 3, 3), dtype=bool)), "integer or float dtype"),
    (dict(weights=np.full((1, 1, 3, 3), np.nan)), "NaN or infinity"),
    (dict(sparsity=1.5), r"sparsity must be in \[0, 1\), not 1.5"),
    (dict(sparsity=1.0), r"sparsity must be in \[0, 1\)"),
    (dict(sparsity=-0.1), r"sparsity must be in \[0, 1\)"),
    (dict(sparsity="half"), "sparsity must be a number"),
    (dict(granularity="foo"), "unknown granularity 'foo'; choose one of element, vector, kernel"),
    (dict(norm="l3"), "norm must be 'l1' or 'l2', not 'l3'"),
    (dict(granularity="block", block=(0, 4)), r"block must be two positive integers \(bm, bc\)"),
    (dict(granularity="block", block=(4,)), "block must be two positive integers"),
    (dict(granularity="block", block=(2.5, 4)), "block must be two positive integers"),
    (dict(granularity="strided", sigma=0), r"sigma must be an integer in \[1, R\*S=9\], not 0"),
    (dict(granularity="strided", sigma=10), r"sigma must be an integer in \[1, R\*S=9\], not 10"),
    (dict(granularity="kernel", sigma=2), "sigma only applies to granularity 'strided'"),
    (dict(granularity="balanced", keep=0), r"keep must be an integer in \[1, R\*S=9\], not 0"),
    (dict(granularity="balanced", keep=10), r"keep must be an integer in \[1, R\*S=9\], not 10"),
    (dict(granularity="balanced", keep=2.5), r"keep must be an integer in \[1, R\*S=9\], not 2.5"),
    (dict(granularity="balanced", keep=True), "keep must be an integer"),
    (dict(granularity="kernel", keep=2), "keep only applies to granularity 'balanced', not 'kernel'"),
    (dict(granularity="strided", keep=2), "keep only applies to granularity 'balanced'"),
    (dict(granularity="balanced", sigma=2), "sigma only applies to granularity 'strided'"),
    (dict(seed=1.5), "seed must be an integer"),
])
def test_errors(kwargs, match):
    args = dict(weights=np.ones((2, 2, 3, 3)), granularity="kernel", sparsity=0.5) | kwargs
    w, g, s = args.pop("weights"), args.pop("granularity"), args.pop("sparsity")
    with pytest.raises(ValueError, match=match):
        prune(w, g, s, **args)


def test_group_norms_errors():
    with pytest.raises(ValueError, match="unknown granularity"):
        group_norms(np.ones((1, 1, 1, 1)), "dense")
    with pytest.raises(ValueError, match="norm must be"):
        group_norms(np.ones((1, 1, 1, 1)), "kernel", "max")


# ------------------------------------------------------------------------------------------ CLI


def write_layer(path, **extra):
    arrays = dict(weights=rand_weights(shape=(8, 4, 3, 3)), activations=np.arange(4 * 5 * 5).reshape(4, 5, 5),
                  stride=np.array(1), padding=np.array(1))
    arrays.update(extra)
    np.savez(path, **arrays)
    return arrays


def test_cli_kernel_copies_other_arrays(tmp_path, capsys):
    src = write_layer(tmp_path / "in.npz")
    out = tmp_path / "out.npz"
    assert main(["--layer", str(tmp_path / "in.npz"), "--granularity", "kernel", "--sparsity", "0.5",
                 "--norm", "l1", "-o", str(out)]) == 0
    with np.load(out) as data:
        assert set(data.files) == {"weights", "mask", "activations", "stride", "padding"}
        for key in ("activations", "stride", "padding"):
            np.testing.assert_array_equal(data[key], src[key])
        expected = prune(src["weights"], "kernel", 0.5, norm="l1")
        np.testing.assert_array_equal(data["weights"], expected.weights)
        np.testing.assert_array_equal(data["mask"], expected.mask)
        assert data["weights"].dtype == src["weights"].dtype
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "kernel" in line and "0.5000" in line and "16/32 groups pruned" in line


def test_cli_block_and_strided_outputs(tmp_path):
    write_layer(tmp_path / "in.npz")
    out = tmp_path / "b.npz"
    assert main(["--layer", str(tmp_path / "in.npz"), "--granularity", "block", "--sparsity", "0.5",
                 "--block", "2x2", "--seed", "3", "-o", str(out)]) == 0
    with np.load(out) as data:
        assert {"filter_perm", "channel_perm"} <= set(data.files)
        assert "stride_pattern" not in data.files
    out2 = tmp_path / "s.npz"
    assert main(["--layer", str(out), "--granularity", "strided", "--sparsity", "0.5", "--sigma", "3",
                 "-o", str(out2)]) == 0
    with np.load(out2) as data:
        assert (data["stride_pattern"][:, 0] == 3).all()
        assert "filter_perm" not in data.files  # stale outputs of the earlier run are dropped


def test_cli_balanced_keep_bounds_every_kernel(tmp_path, capsys):
    src = write_layer(tmp_path / "in.npz")
    out = tmp_path / "out.npz"
    assert main(["--layer", str(tmp_path / "in.npz"), "--granularity", "balanced", "--sparsity", "0.9",
                 "--keep", "3", "-o", str(out)]) == 0
    with np.load(out) as data:
        assert set(data.files) == {"weights", "mask", "activations", "stride", "padding"}
        assert kernel_nonzeros(data["weights"]).max() <= 3
        expected = prune(src["weights"], "balanced", 0.9, keep=3)
        np.testing.assert_array_equal(data["weights"], expected.weights)
        np.testing.assert_array_equal(data["mask"], expected.mask)
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and line.startswith("balanced (keep 3 per kernel): target sparsity 0.9000")
    assert f"{expected.groups_pruned}/32 groups pruned" in line
    out2 = tmp_path / "derived.npz"  # without --keep the bound comes from the sparsity: round(0.5 * 9) = 4
    assert main(["--layer", str(tmp_path / "in.npz"), "--granularity", "balanced", "--sparsity", "0.5",
                 "-o", str(out2)]) == 0
    with np.load(out2) as data:
        assert kernel_nonzeros(data["weights"]).max() == 4
    assert "keep 4 per kernel" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "match"), [
    (["--granularity", "foo", "--sparsity", "0.5"], "unknown granularity 'foo'"),
    (["--granularity", "kernel", "--sparsity", "0.5", "--keep", "2"],
     "--keep only applies to --granularity balanced, not 'kernel'"),
    (["--granularity", "balanced", "--sparsity", "0.5", "--keep", "0"], r"keep must be an integer in \[1, R\*S=9\]"),
    (["--granularity", "balanced", "--sparsity", "0.5", "--keep", "10"], r"keep must be an integer in \[1, R\*S=9\]"),
    (["--granularity", "balanced", "--sparsity", "0.5", "--keep", "2.5"], "--keep"),
    (["--granularity", "kernel", "--sparsity", "2"], r"sparsity must be in \[0, 1\)"),
    (["--granularity", "block", "--sparsity", "0.5", "--block", "4by4"], "BMxBC"),
    (["--granularity", "kernel", "--sparsity", "0.5", "--norm", "l3"], "--norm"),
    (["--granularity", "kernel"], "required: --target-sparsity"),
])
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, argv, match):
    write_layer(tmp_path / "in.npz")
    assert main(["--layer", str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npz"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m golden.prune: error: ") and err.count("\n") == 1
    assert err.endswith(" (see python -m golden.prune --help)\n")
    assert re.search(match, err)
    assert not (tmp_path / "o.npz").exists()


def test_cli_bad_files(tmp_path, capsys):
    out = str(tmp_path / "o.npz")
    assert main(["--layer", str(tmp_path / "missing.npz"), "--granularity", "kernel", "--sparsity", "0.5",
                 "-o", out]) == 2
    assert capsys.readouterr().err.startswith(f"python -m golden.prune: error: layer file {tmp_path / 'missing.npz'} "
                                              "does not exist")
    np.savez(tmp_path / "noweights.npz", activations=np.zeros((1, 2, 2)))
    assert main(["--layer", str(tmp_path / "noweights.npz"), "--granularity", "kernel", "--sparsity", "0.5",
                 "-o", out]) == 2
    assert "no 'weights' array (found: activations)" in capsys.readouterr().err
    np.save(tmp_path / "plain.npy", np.zeros((1, 1, 1, 1)))
    assert main(["--layer", str(tmp_path / "plain.npy"), "--granularity", "kernel", "--sparsity", "0.5",
                 "-o", out]) == 2
    assert "is not a valid layer file (.npz with an integer 'weights' array): it is a single .npy array" \
        in capsys.readouterr().err
