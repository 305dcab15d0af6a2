"""Training and pruned fine-tuning (``host.train``, ``host.jaxnet``): the JAX interpreter against the float
reference, the ONNX round trip, masks that keep their structure, determinism and the command line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("jax")  # the [train] extra: imported at module level below
pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

from bench.models import small_cnn  # noqa: E402
from golden.config import ArrayConfig  # noqa: E402
from golden.prune import GRANULARITIES, prune  # noqa: E402
from host import jaxnet  # noqa: E402
from host.data import Dataset, load_dataset  # noqa: E402
from host.graph import load_onnx, run_float  # noqa: E402
from host.models import TRAINABLE, Builder  # noqa: E402
from host.quant import quantize  # noqa: E402
from host.train import (  # noqa: E402
    PruneSpec,
    cubic_sparsity,
    evaluate,
    main,
    read_model,
    shifted,
    train,
    write_model,
)
from tests.support import run_main  # noqa: E402

PROG = "python -m host.train"
BATCH = 32
"""Every test trains with this batch size: runs of one network share one compiled step."""


def fit(model, data, **kw):
    return train(model, data, batch=BATCH, **kw)


def tiny(path, seed: int = 0, bn: bool = False):
    """Two convs (4 and 8 channels) and a classifier on the flattened 4x4 maps, for 8x8 digits: learns in
    a few steps, compiles in seconds. With
    ``bn`` the second conv has no bias and a BatchNormalization follows it, as PyTorch exports."""
    b = Builder(1, 8, seed)
    x = b.maxpool(b.conv("x", 4, 3), 2, 2)
    if bn:
        from onnx import helper

        x = b.conv(x, 8, 3, relu=False)
        conv = b.nodes[-1]
        del conv.input[2]
        rng = np.random.default_rng(seed + 1)
        names = [b._init(f"bn_{p}", v) for p, v in (("scale", rng.uniform(0.5, 2, 8)), ("bias", rng.normal(0, .1, 8)),
                                                     ("mean", rng.normal(0, .1, 8)), ("var", rng.uniform(.5, 2, 8)))]
        b.nodes.append(helper.make_node("BatchNormalization", [x, *names], ["bn"], name="bn"))
        x = b.relu("bn")
    else:
        x = b.conv(x, 8, 3)
    return b.save(b.head(x, 10, pool=False), path, "tiny")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def subset(digits):
    """400 training and 120 test digits: enough to learn from in two epochs, quick to evaluate."""
    return Dataset(digits.x_train[:400], digits.y_train[:400], digits.x_test[:120], digits.y_test[:120], "sub", 10)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return tiny(tmp_path_factory.mktemp("train") / "tiny.onnx")


def test_the_jax_interpreter_matches_the_float_reference_on_every_op(tmp_path):
    model = read_model(small_cnn(tmp_path / "small.onnx"))  # conv, relu, both pools, add, gap, flatten, gemm
    x = np.random.default_rng(0).random((3, *model.graph.input_shape)).astype(np.float32)
    ref = run_float(model.graph, x.astype(np.float64))[model.graph.output]
    got = jaxnet.forward(model.graph, model.binding, {k: jnp.asarray(v) for k, v in model.params.items()}, x)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, last", [((1, 8, 8), (64, 2, 2)), ((3, 32, 32), (64, 8, 8))])
def test_resnet8_is_sized_by_its_input(tmp_path, shape, last):
    graph = load_onnx(TRAINABLE["resnet8"](tmp_path / "r8.onnx", shape, 10, 0))
    assert [op.kind for op in graph.ops].count("Add") == 3 and sum(op.kind == "Conv" for op in graph.ops) == 9
    t = run_float(graph, np.zeros(shape))
    assert t[graph.output].shape == (10,) and t[graph.ops[-4].output].shape == last  # before the pool


def test_the_onnx_round_trip_is_lossless(tiny_path, tmp_path):
    model = read_model(tiny_path)
    write_model(model, model.params, tmp_path / "same.onnx")
    assert (tmp_path / "same.onnx").read_bytes() == tiny_path.read_bytes()
    changed = {k: v + np.float32(0.25) for k, v in model.params.items()}
    write_model(model, changed, tmp_path / "changed.onnx")
    again = read_model(tmp_path / "changed.onnx")
    assert again.params.keys() == changed.keys()
    for k, v in changed.items():
        np.testing.assert_array_equal(again.params[k], v)


def test_a_folded_batch_norm_is_written_back_into_its_conv(tmp_path):
    model = read_model(tiny(tmp_path / "bn.onnx", bn=True))
    assert model.binding.biases["conv4"] == "bn_bias"  # the conv had no bias: the normalization's is used
    write_model(model, model.params, tmp_path / "folded.onnx")
    import onnx

    assert "BatchNormalization" not in {n.op_type for n in onnx.load(str(tmp_path / "folded.onnx")).graph.node}
    x = np.random.default_rng(1).random((2, 1, 8, 8))
    before, after = load_onnx(tmp_path / "bn.onnx"), load_onnx(tmp_path / "folded.onnx")
    np.testing.assert_allclose(run_float(after, x)[after.output], run_float(before, x)[before.output], rtol=1e-5,
                               atol=1e-6)


def test_qat_rounds_weights_as_host_quant_does(tiny_path):
    graph = load_onnx(tiny_path)
    net = quantize(graph, np.random.default_rng(0).random(graph.input_shape), ArrayConfig())
    for step in net.steps:
        if step.weights is not None:
            w = step.op.w if step.op.kind == "Conv" else step.op.w[:, :, None, None]
            s = np.abs(w).reshape(len(w), -1).max(axis=1) / 127
            fq = np.asarray(jaxnet._quant_weight(jnp.asarray(w), jaxnet.Quant()))
            np.testing.assert_allclose(fq, step.weights * s[:, None, None, None], rtol=1e-6)


def test_a_short_run_learns_far_above_chance(tiny_path, subset):
    result = fit(read_model(tiny_path), subset, epochs=2, lr=2e-2)
    assert result.history[-1].test_acc > 0.4  # chance is 0.1
    assert [e.epoch for e in result.history] == [1, 2]


def test_the_same_seed_gives_the_same_weights_and_another_does_not(tiny_path, subset):
    model = read_model(tiny_path)
    a, b, c = (fit(model, subset, epochs=1, seed=s).params for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


@pytest.fixture(scope="module")
def trained(tiny_path, subset):
    return read_model(tiny_path), fit(read_model(tiny_path), subset, epochs=2, lr=2e-2).params


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_masks_survive_fine_tuning_with_the_granularitys_exact_structure(trained, subset, granularity):
    model, params = trained
    model.params = params
    result = fit(model, subset, epochs=1, lr=1e-2, prune_spec=PruneSpec(granularity, 0.5))  # conv1 is one block
    # the convs, not the classifier; channel pruning leaves the conv on the network's input alone
    assert set(result.pruned) == ({"conv4"} if granularity == "channel" else {"conv1", "conv4"})
    for key, pruned in result.masks.items():
        w = result.params[key]
        assert not w[~pruned.mask].any()  # zeros stay zero
        assert 1 - np.count_nonzero(w) / w.size >= pruned.sparsity - 1e-9
        if granularity == "block":  # whole 4x4 kernel blocks of the reordered tensor are zero or kept
            r = (w != 0).any(axis=(2, 3))[pruned.filter_perm][:, pruned.channel_perm]
            kept = pruned.mask.any(axis=(2, 3))[pruned.filter_perm][:, pruned.channel_perm]
            for i in range(0, r.shape[0], 4):
                for j in range(0, r.shape[1], 4):
                    assert kept[i:i + 4, j:j + 4].all() or not r[i:i + 4, j:j + 4].any()
        else:  # pruning the fine-tuned weights again at G:S removes nothing: the zeros are G-shaped
            np.testing.assert_array_equal(prune(w, granularity, 0.5).weights, w)


def test_the_classifier_is_pruned_only_when_asked(trained, subset):
    model, params = trained
    model.params = params
    result = fit(model, subset, epochs=1, prune_spec=PruneSpec("element", 0.5, classifier=True))
    assert set(result.pruned) == {"conv1", "conv4", "fc7"}
    assert abs(result.pruned["fc7"] - 0.5) < 0.01


def test_the_gradual_schedule_is_zhu_and_gupta_cubic_and_ends_at_the_target(trained, subset):
    assert [cubic_sparsity(t, 8, 0.8) for t in (0, 8, 20)] == [0.0, 0.8, 0.8]
    assert cubic_sparsity(4, 8, 0.8) == pytest.approx(0.8 * (1 - 0.5 ** 3))
    model, params = trained
    model.params = params
    result = fit(model, subset, epochs=3, prune_spec=PruneSpec("kernel", 0.75, schedule="gradual", every=4))
    sparsities = [e.sparsity for e in result.history]
    assert sparsities == sorted(sparsities) and sparsities[0] < 0.75
    assert result.pruned == pytest.approx({"conv1": 0.75, "conv4": 0.75}, abs=0.02)


def test_ssl_penalises_the_groups_then_prunes_them(trained, subset):
    model, params = trained
    model.params = params
    result = fit(model, subset, epochs=2, prune_spec=PruneSpec("filter", 0.5, method="ssl", ssl_lambda=0.05))
    assert result.ssl_zeroed is not None and 0 <= result.ssl_zeroed <= 1
    assert result.pruned == pytest.approx({"conv1": 0.5, "conv4": 0.5})
    penalty = jaxnet.group_norm_penalty(jnp.ones((2, 3, 1, 1)), np.array([0, 0, 0, 1, 1, 1]).reshape(2, 3, 1, 1), 2)
    assert float(penalty) == pytest.approx(2 * np.sqrt(3))


def test_qat_fine_tuning_runs_through_the_rounding(trained, subset):
    model, params = trained
    model.params = params
    result = fit(model, subset, epochs=1, qat=True, prune_spec=PruneSpec("kernel", 0.5))
    assert evaluate(model, result.params, subset.x_test, subset.y_test, qat=True) > 0.3


def test_shifts_move_whole_images_by_at_most_the_bound():
    x = np.arange(2 * 9, dtype=np.float32).reshape(2, 1, 3, 3) + 1
    y = shifted(x, np.random.default_rng(0), 1)
    for a, b in zip(x, y, strict=True):
        assert any(np.array_equal(b[0], np.pad(a[0], 1)[1 + dy:4 + dy, 1 + dx:4 + dx])
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_the_command_line_trains_deterministically_and_reports_pruned_layers(tiny_path, subset, tmp_path, capsys):
    data = tmp_path / "sub.npz"
    np.savez(data, x_train=subset.x_train, y_train=subset.y_train, x_test=subset.x_test, y_test=subset.y_test)
    outs = []
    for k in range(2):
        out = tmp_path / f"p{k}.onnx"
        code, stdout, _ = run_main(main, ["--init", str(tiny_path), "--data", str(data), "--epochs", "1",
                                          "--batch", "32", "--prune", "kernel:0.5", "-o", str(out)], capsys)
        assert code == 0, stdout
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert "pruned conv1: kernel 50.0 % zeros" in stdout and "pruned fc7" not in stdout
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "p0.onnx")).metadata_props}
    assert json.loads(meta["host.train"])["prune"]["layers"] == {"conv1": 0.5, "conv4": 0.5}


@pytest.mark.parametrize("argv, message", [
    (["--data", "BAD"], r"--data: .*bad\.npz: missing y_test; the file must hold exactly x_train, y_train, x_test, "
                        r"y_test"),
    (["--data", "digits", "--method", "ssl"], r"--method only applies with --prune G:S; add --prune or drop --method"),
    (["--data", "digits", "--prune", "kernel:1.5"], r"--prune sparsity must be in \[0, 1\), not 1\.5"),
    (["--data", "digits", "--epochs", "0"], r"--epochs must be at least 1, not 0"),
    (["--data", "SHAPE"], r"the model takes inputs \(1, 8, 8\) but shape's images are \(1, 4, 4\)"),
    (["--data", "digits", "--prune", "block:0.75"], r"--prune block:0\.75 zeroes every weight of conv1 "
                                                    r"\(weights \(4, 1, 3, 3\): too few groups"),
])
def test_bad_arguments_and_data_are_refused_in_one_line(tiny_path, tmp_path, capsys, argv, message):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 1, 8, 8), np.float32), y_train=[0, 1],
             x_test=np.zeros((2, 1, 8, 8), np.float32))
    np.savez(tmp_path / "shape.npz", x_train=np.zeros((2, 1, 4, 4), np.float32), y_train=[0, 1],
             x_test=np.zeros((2, 1, 4, 4), np.float32), y_test=[0, 1])
    argv = [{"BAD": str(tmp_path / "bad.npz"), "SHAPE": str(tmp_path / "shape.npz")}.get(a, a) for a in argv]
    code, _, err = run_main(main, ["--init", str(tiny_path), *argv, "-o", str(tmp_path / "o.onnx")], capsys)
    assert code == 2
    assert err.startswith(f"{PROG}: error: ") and err.endswith(f" (see {PROG} --help)\n") and err.count("\n") == 1
    assert re.search(message, err), err
