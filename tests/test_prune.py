"""Tests for golden.prune: group shapes, targets, ranking, strided patterns, TETRIS reordering, CLI."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from golden.prune import GRANULARITIES, PruneResult, group_norms, main, prune

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
                "channel": (4,), "strided": (4, 3, 2), "block": (2, 1)}
    for g in GRANULARITIES:
        assert group_norms(w, g).shape == expected[g], g
    np.testing.assert_allclose(group_norms(w, "kernel"), np.sqrt((w**2).sum(axis=(2, 3))))
    np.testing.assert_allclose(group_norms(w, "vector", "l1"), np.abs(w).sum(axis=3))
    np.testing.assert_allclose(group_norms(w, "block", "l1", block=(4, 4))[1, 0], np.abs(w[4:]).sum())


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


@pytest.mark.parametrize(("argv", "match"), [
    (["--granularity", "foo", "--sparsity", "0.5"], "unknown granularity 'foo'"),
    (["--granularity", "kernel", "--sparsity", "2"], r"sparsity must be in \[0, 1\)"),
    (["--granularity", "block", "--sparsity", "0.5", "--block", "4by4"], "BMxBC"),
    (["--granularity", "kernel", "--sparsity", "0.5", "--norm", "l3"], "--norm"),
    (["--granularity", "kernel"], "--sparsity"),
])
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, argv, match):
    write_layer(tmp_path / "in.npz")
    assert main(["--layer", str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npz"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(match, err)
    assert not (tmp_path / "o.npz").exists()


def test_cli_bad_files(tmp_path, capsys):
    out = str(tmp_path / "o.npz")
    assert main(["--layer", str(tmp_path / "missing.npz"), "--granularity", "kernel", "--sparsity", "0.5",
                 "-o", out]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read")
    np.savez(tmp_path / "noweights.npz", activations=np.zeros((1, 2, 2)))
    assert main(["--layer", str(tmp_path / "noweights.npz"), "--granularity", "kernel", "--sparsity", "0.5",
                 "-o", out]) == 2
    assert "no 'weights' array (found: activations)" in capsys.readouterr().err
    np.save(tmp_path / "plain.npy", np.zeros((1, 1, 1, 1)))
    assert main(["--layer", str(tmp_path / "plain.npy"), "--granularity", "kernel", "--sparsity", "0.5",
                 "-o", out]) == 2
    assert "not an .npz archive" in capsys.readouterr().err
