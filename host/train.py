"""``python -m host.train``: train a CNN, or prune and fine-tune one, on ONNX graphs in JAX; ONNX in, ONNX out.

Accuracy beside cycles needs trained weights whose zeros have the structure each dataflow can skip.
This command trains the networks ``host.net`` runs, as ``host.graph`` reads them (``host.jaxnet``
executes that graph), so a model exported from PyTorch or Keras fine-tunes the same way as the ones
built here, and writes the trained weights back into the ONNX model::

    python -m host.train --model small --data digits -o base.onnx
    python -m host.train --init base.onnx --prune kernel:0.75 --data digits -o pruned.onnx
    python -m host.train --init base.onnx --prune block:0.75 --schedule gradual --qat --data digits -o p.onnx

Pruning masks come from ``golden.prune``, the code the hardware runs use, at every granularity it has.
Pruned weights stay zero through fine-tuning (gradients and weights are masked after every step), so
the zeros keep the exact structure of the granularity. Which layers are pruned is explicit: every conv,
and the fully connected classifier only with ``--prune-classifier``; the layers and their achieved
sparsity are printed and stored in the model's metadata (``host.train``). A pruning that would zero a
whole layer is refused, not trained into a network that cannot see its input; ``channel`` pruning
leaves the convs that read the network's input alone (:data:`INPUT_KEPT`).

Schedules: ``oneshot`` prunes at the start and fine-tunes; ``gradual`` raises the sparsity along Zhu and
Gupta's cubic ``s_t = s_f (1 - (1 - t/T)^3)`` over the first two thirds of the steps, masks recomputed
every ``--prune-every`` steps, then fine-tunes. Methods: ``magnitude`` ranks groups by their norm as
trained; ``ssl`` first trains half the epochs with SSL's group Lasso over the granularity's groups
(Wen et al. 2016; ``--ssl-lambda``), which drives whole groups towards zero, then prunes the smallest
groups (those) and fine-tunes. ``--qat`` trains through ``host.quant``'s int8 rounding (``host.jaxnet``).

Deterministic: the same arguments give the same ONNX bytes (seeded initialisation and batch order).
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from golden.cli import OutputFile, Parser
from golden.config import ArrayConfig
from golden.prune import GRANULARITIES, PruneResult, group_index, group_norms, prune

from .data import DataError, Dataset, load_dataset
from .graph import Graph, GraphError, load_onnx
from .models import TRAINABLE
from .net import _prune_spec  # one parser for G:S, shared with host.net's --prune

try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as _missing:  # the optional [train] extra is not installed
    if __name__ == "__main__":
        sys.stderr.write(f"python -m host.train: error: python module {_missing.name} is missing; install the "
                         f"training extra: pip install -e '.[train]'\n")
        raise SystemExit(2) from None
    raise

from . import jaxnet

EVAL_CHUNK = 256
"""Images per evaluation call: one compiled shape whatever the split's size (the last chunk is padded)."""

GRADUAL_FRACTION = 2 / 3
"""``gradual``: the share of the steps over which the sparsity ramps up (the rest fine-tunes)."""

METADATA_KEY = "host.train"
"""The model metadata entry recording how the weights were trained and which layers were pruned."""


# --- parameters: ONNX initializers <-> a JAX pytree ---

@dataclass
class Model:
    """An ONNX model, its ``host.graph`` reading and the trainable initializers (``params``, by name)."""

    proto: object  # onnx.ModelProto
    graph: Graph
    binding: jaxnet.Binding
    params: dict[str, np.ndarray]


def _nodes_by_name(proto) -> dict[str, object]:
    """ONNX nodes by the name ``host.graph`` gives their ops (``name``, or ``<op_type>_<index>``)."""
    return {node.name or f"{node.op_type}_{k}": node for k, node in enumerate(proto.graph.node)}


def read_model(path: str | Path) -> Model:
    """The model at ``path`` with its trainable parameters (``GraphError`` for what cannot be trained)."""
    graph = load_onnx(path)
    missing = jaxnet.supported(graph)
    if missing:
        raise GraphError(f"node {missing}: host.train cannot execute this op yet (host.jaxnet.OPS)")
    proto = onnx.load(str(path))
    inits = {t.name: t for t in proto.graph.initializer}
    nodes = _nodes_by_name(proto)
    weights, biases, params = {}, {}, {}
    for op in graph.ops:
        if op.w is None:
            continue
        node = nodes[op.name]
        if "weight_scale" in op.attrs or node.input[1] not in inits:
            raise GraphError(f"node {op.name}: its weights are quantized or computed in the model; host.train "
                             f"fine-tunes float weights held in initializers (export the float model)")
        weights[op.name] = node.input[1]
        params[node.input[1]] = op.w.astype(np.float32)
        if op.b is not None:
            folded = [nodes[n] for n in op.attrs.get("folded", [])]
            key = node.input[2] if len(node.input) > 2 and node.input[2] else folded[-1].input[2]
            biases[op.name] = key
            params[key] = op.b.astype(np.float32)
    return Model(proto, graph, jaxnet.Binding(weights, biases), params)


def write_model(model: Model, params: dict[str, np.ndarray], path: str | Path, metadata: dict | None = None) -> None:
    """``model`` with ``params`` in its initializers, saved to ``path``.

    Weights go back in the layout of their node (Gemm ``transB``, MatMul ``(in, out)``). A
    BatchNormalization that ``host.graph`` folded into a layer is removed and the folded weights and
    bias written to the layer, so the written model computes what was trained."""
    proto = copy.deepcopy(model.proto)
    g = proto.graph
    nodes = _nodes_by_name(proto)
    inits = {t.name: t for t in g.initializer}

    def put(name: str, value: np.ndarray) -> None:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(inits[name].data_type) if name in inits else np.float32
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype), name)
        if name in inits:
            inits[name].CopyFrom(tensor)
        else:
            g.initializer.append(tensor)
            inits[name] = g.initializer[-1]

    for op in model.graph.ops:
        if op.name not in model.binding.weights:
            continue
        node = nodes[op.name]
        w = np.asarray(params[model.binding.weights[op.name]])
        transb = next((a.i for a in node.attribute if a.name == "transB"), 0)
        put(node.input[1], w if node.op_type == "Conv" or transb else w.T)
        if op.name in model.binding.biases:
            key = model.binding.biases[op.name]
            put(key, np.asarray(params[key]))
            while len(node.input) < 3:
                node.input.append("")
            node.input[2] = key
        for bn_name in op.attrs.get("folded", []):  # the folded normalization leaves the graph
            bn = nodes[bn_name]
            for other in g.node:
                for i, name in enumerate(other.input):
                    if name == bn.output[0]:
                        other.input[i] = bn.input[0]
            for out in g.output:
                if out.name == bn.output[0]:
                    out.name = bn.input[0]
            g.node.remove(bn)
    used = {i for node in g.node for i in node.input}
    for t in [t for t in g.initializer if t.name not in used]:  # the folded normalizations' statistics
        g.initializer.remove(t)
    if metadata is not None:
        for p in [p for p in proto.metadata_props if p.key == METADATA_KEY]:
            proto.metadata_props.remove(p)
        proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata, sort_keys=True))
    onnx.save(proto, str(path))


# --- pruning ---

class PruneError(ValueError):
    """A pruning that cannot give a working network (one line naming the layer and the fix)."""


@dataclass(frozen=True)
class PruneSpec:
    """What to prune: granularity, target sparsity, ``method``, ``schedule``, the classifier too or not."""

    granularity: str
    sparsity: float
    method: str = "magnitude"
    schedule: str = "oneshot"
    classifier: bool = False
    every: int | None = None  # gradual: steps between mask updates (default: one epoch)
    ssl_lambda: float = 1e-3


INPUT_KEPT = ("channel",)
"""Granularities that prune input channels: they leave the convs that read the network's input alone,
because those channels are the image's (pruning them drops a colour plane, or on a grey image the
whole input), as channel pruning in the literature does (SSL prunes channels of hidden layers)."""


def pruned_layers(model: Model, classifier: bool, granularity: str | None = None) -> dict[str, str]:
    """Weight key by op name of the layers to prune: every Conv, and the Gemm layers only when asked;
    at a granularity of :data:`INPUT_KEPT`, not the layers that read the network's input."""
    return {op.name: model.binding.weights[op.name] for op in model.graph.ops
            if op.name in model.binding.weights and (op.kind == "Conv" or classifier)
            and not (granularity in INPUT_KEPT and model.graph.input in op.inputs)}


def _as_kernels(w: np.ndarray) -> np.ndarray:
    """A weight as ``golden.prune`` takes it: ``(M, C, R, S)``; a fully connected ``(out, in)`` as 1x1 kernels."""
    return w if w.ndim == 4 else w.reshape(*w.shape, 1, 1)


def prune_layers(params: dict[str, np.ndarray], layers: dict[str, str], granularity: str, sparsity: float,
                 seed: int) -> dict[str, PruneResult]:
    """Each pruned layer's ``golden.prune`` result at ``granularity`` and ``sparsity`` (a fully connected
    layer's as ``(out, in, 1, 1)``); its ``mask`` is what fine-tuning keeps."""
    return {key: prune(_as_kernels(np.asarray(params[key], np.float64)), granularity, sparsity, seed=seed)
            for key in layers.values()}


def cubic_sparsity(step: int, ramp: int, final: float) -> float:
    """Zhu and Gupta's gradual schedule from 0: ``s_t = s_f + (0 - s_f)(1 - t/T)^3``, ``s_f`` from ``T`` on."""
    return final * (1 - (1 - min(step, ramp) / ramp) ** 3) if ramp > 0 else final


# --- training ---

@dataclass
class Epoch:
    """One epoch's numbers, as printed: mean loss, accuracy over its batches, test accuracy, seconds."""

    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    seconds: float
    sparsity: float | None = None


@dataclass
class Result:
    """What :func:`train` returns: the trained parameters, the per-epoch history, the pruned layers (op
    name -> achieved sparsity) and the ``golden.prune`` results whose masks fine-tuning kept."""

    params: dict[str, np.ndarray]
    history: list[Epoch]
    pruned: dict[str, float] = field(default_factory=dict)
    masks: dict[str, PruneResult] = field(default_factory=dict)  # the last pruning, by weight key
    ssl_zeroed: float | None = None  # ssl: the share of pruned groups the penalty had driven to ~0


class _Net:
    """What a compiled step depends on besides the arrays: the graph's structure (not its weights, which
    are ``params``), the binding, the fake quantization and SSL's granularity. Hashed by content, so
    every run on a network of the same structure reuses one compilation (``jax.jit`` static argument):
    on CPU the compile, not the epochs, is most of a short fine-tuning run."""

    def __init__(self, model: Model, quant: jaxnet.Quant | None, ssl: tuple[str, tuple[str, ...]] | None = None):
        self.graph, self.binding, self.quant, self.ssl = model.graph, model.binding, quant, ssl
        g = model.graph
        self.key = (g.input, tuple(g.input_shape), g.output, quant, ssl,
                    tuple((op.name, op.kind, tuple(op.inputs), op.output, repr(sorted(op.attrs.items())))
                          for op in g.ops),
                    tuple(sorted(model.binding.weights.items())), tuple(sorted(model.binding.biases.items())))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Net) and self.key == other.key

    def logits(self, p, x):
        return jaxnet.forward(self.graph, self.binding, p, x, self.quant)


@partial(jax.jit, static_argnums=0)
def _predict(net: _Net, p, x):
    return jnp.argmax(net.logits(p, x), axis=-1)


_ADAM = optax.scale_by_adam()
"""Adam's update direction; the (cosine-decayed) learning rate is applied in :func:`_step`, an argument
rather than part of the optimiser so that runs of different lengths share one compilation."""


@partial(jax.jit, static_argnums=0)
def _step(net: _Net, p, s, m, x, y, lam, lr):
    """One Adam step on the batch ``(x, y)``: gradients and weights masked by ``m`` (pruned zeros stay
    zero), SSL's group Lasso weighted by ``lam`` when ``net.ssl`` names a granularity and the layers."""

    def loss_fn(p):
        logits = net.logits(p, x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        if net.ssl is not None:
            granularity, layers = net.ssl
            for k in layers:  # the pruned layers' groups, as golden.prune forms them
                ids = group_index(_as_kernels(p[k]).shape, granularity)
                loss = loss + lam * jaxnet.group_norm_penalty(p[k], ids, int(ids.max()) + 1)
        return loss, (jnp.argmax(logits, -1) == y).sum()

    (loss, hits), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
    g = {k: g[k] * m[k] if k in m else g[k] for k in g}
    updates, s = _ADAM.update(g, s, p)
    p = {k: p[k] - lr * updates[k] for k in p}
    return {k: p[k] * m[k] if k in m else p[k] for k in p}, s, loss, hits


def _accuracy(net: _Net, params, x: np.ndarray, y: np.ndarray) -> float:
    hits = 0
    for i in range(0, len(x), EVAL_CHUNK):
        chunk = x[i:i + EVAL_CHUNK]
        padded = np.concatenate([chunk, np.zeros((EVAL_CHUNK - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        hits += int((np.asarray(_predict(net, params, padded))[:len(chunk)] == y[i:i + EVAL_CHUNK]).sum())
    return hits / len(x)


def evaluate(model: Model, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, qat: bool = False) -> float:
    """Top-1 accuracy of ``params`` on ``(x, y)``, in float or through the int8 rounding."""
    return _accuracy(_Net(model, _quant() if qat else None), params, x, y)


def _quant() -> jaxnet.Quant:
    cfg = ArrayConfig.__dataclass_fields__
    return jaxnet.Quant(weight_bits=cfg["weight_bits"].default, act_bits=cfg["act_bits"].default)


def shifted(x: np.ndarray, rng: np.random.Generator, shift: int) -> np.ndarray:
    """Each image of the batch ``x`` moved by a random whole number of pixels in ``[-shift, shift]`` along
    each axis, zero-filled: small data sets (1,437 digits) generalise far better when the network
    cannot learn where a stroke sits, and a shifted digit is still the same digit."""
    if shift == 0:
        return x
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
    dy, dx = rng.integers(0, 2 * shift + 1, (2, n))
    rows = (dy[:, None] + np.arange(h))[:, None, :, None]
    cols = (dx[:, None] + np.arange(w))[:, None, None, :]
    return padded[np.arange(n)[:, None, None, None], np.arange(x.shape[1])[None, :, None, None], rows, cols]


def train(model: Model, data: Dataset, *, epochs: int, seed: int = 0, lr: float = 1e-2, batch: int = 64,
          shift: int = 1, prune_spec: PruneSpec | None = None, qat: bool = False,
          log: Callable[[Epoch], None] | None = None) -> Result:
    """Train ``model``'s parameters on ``data`` with Adam (cosine-decayed learning rate) on images
    randomly shifted by up to ``shift`` pixels, pruning by ``prune_spec`` if given; deterministic for a
    given ``seed`` (batch order and shifts, ``golden.prune``'s)."""
    quant = _quant() if qat else None
    rng = np.random.default_rng(seed)
    n = len(data.x_train)
    batch = min(batch, n)
    per_epoch = n // batch  # each epoch draws a fresh permutation; its last n % batch images wait for the next
    total = epochs * per_epoch
    params = {k: jnp.asarray(v) for k, v in model.params.items()}
    state = _ADAM.init(params)
    layers = pruned_layers(model, prune_spec.classifier, prune_spec.granularity) if prune_spec else {}
    # every weight has a mask (all ones where nothing is pruned): one pytree shape, one compilation
    masks = {key: jnp.ones(params[key].shape, params[key].dtype) for key in model.binding.weights.values()}
    ssl = prune_spec is not None and prune_spec.method == "ssl"
    net = _Net(model, quant, (prune_spec.granularity, tuple(sorted(layers.values()))) if ssl else None)
    every = (prune_spec.every or per_epoch) if prune_spec else per_epoch
    ssl_epochs = (epochs + 1) // 2 if ssl else 0
    gradual = prune_spec is not None and prune_spec.schedule == "gradual"
    first = ssl_epochs * per_epoch  # the step pruning starts at (after SSL's penalty phase)
    ramp = int((total - first) * GRADUAL_FRACTION)
    result = Result({}, [])

    def remask(sparsity: float) -> None:
        nonlocal params, masks
        host = {k: np.asarray(v) for k, v in params.items()}
        result.masks = prune_layers(host, layers, prune_spec.granularity, sparsity, seed)
        for name, key in layers.items():
            if not result.masks[key].mask.any():
                raise PruneError(f"--prune {prune_spec.granularity}:{sparsity:g} zeroes every weight of {name} "
                                 f"(weights {tuple(host[key].shape)}: too few groups at this granularity), which "
                                 f"cuts the network; lower the sparsity or choose a finer granularity")
        masks = {**masks, **{k: jnp.asarray(r.mask.reshape(params[k].shape), params[k].dtype)
                             for k, r in result.masks.items()}}
        params = {k: params[k] * masks[k] if k in masks else params[k] for k in params}

    t = 0
    for epoch in range(epochs):
        start = time.perf_counter()
        if prune_spec and not gradual and epoch == ssl_epochs:
            if ssl:
                result.ssl_zeroed = _ssl_zeroed(params, layers, prune_spec, seed)
            remask(prune_spec.sparsity)
        order = rng.permutation(n)
        losses, hits = [], 0
        for b in range(per_epoch):
            if gradual and t >= first and ((t - first) % every == 0 and t - first < ramp or t - first == ramp):
                if ssl and t == first:
                    result.ssl_zeroed = _ssl_zeroed(params, layers, prune_spec, seed)
                remask(cubic_sparsity(t - first, ramp, prune_spec.sparsity))
            idx = order[b * batch:(b + 1) * batch]
            lam = prune_spec.ssl_lambda if ssl and epoch < ssl_epochs else 0.0
            x = shifted(data.x_train[idx], rng, shift)
            params, state, loss, h = _step(net, params, state, masks, x, data.y_train[idx], lam, _cosine(lr, t, total))
            losses.append(loss)
            hits += int(h)
            t += 1
        sparsity = _sparsity(params, layers) if layers else None
        result.history.append(Epoch(epoch + 1, float(np.mean(jax.device_get(losses))), hits / (per_epoch * batch),
                                    _accuracy(net, params, data.x_test, data.y_test), time.perf_counter() - start,
                                    sparsity))
        if log:
            log(result.history[-1])
    result.params = {k: np.asarray(v) for k, v in params.items()}
    result.pruned = {name: 1 - np.count_nonzero(result.params[key]) / result.params[key].size
                     for name, key in layers.items()}
    return result


def _cosine(lr: float, step: int, total: int) -> float:
    """The learning rate at ``step`` of ``total``: ``lr`` decayed to 0 along half a cosine (as
    ``optax.cosine_decay_schedule``), computed on the host so the step function takes it as a number."""
    return lr * 0.5 * (1 + np.cos(np.pi * min(step, total) / max(total, 1)))


def _sparsity(params, layers: dict[str, str]) -> float:
    zeros = sum(int((params[k] == 0).sum()) for k in layers.values())
    return zeros / sum(params[k].size for k in layers.values())


def _ssl_zeroed(params, layers: dict[str, str], spec: PruneSpec, seed: int) -> float:
    """After SSL's penalty: of the groups (``golden.prune.group_norms``' groups) that pruning to the
    target removes, the share whose norm fell below 1 % of its layer's largest, i.e. how much of the
    pruning the penalty had already done."""
    host = {k: np.asarray(params[k], np.float64) for k in layers.values()}
    small = pruned = 0
    for key, r in prune_layers(host, layers, spec.granularity, spec.sparsity, seed).items():
        w = _as_kernels(host[key])
        norms = group_norms(w, spec.granularity).ravel()
        kept = np.bincount(group_index(w.shape, spec.granularity).ravel(), r.mask.ravel(), norms.size) > 0
        small += int((norms[~kept] < 0.01 * norms.max()).sum())
        pruned += int((~kept).sum())
    return small / pruned if pruned else 0.0


# --- command line ---

def _progress(e: Epoch) -> None:
    sp = "" if e.sparsity is None else f"  sparsity {e.sparsity:.3f}"
    print(f"epoch {e.epoch:3d}  loss {e.loss:.4f}  train {100 * e.train_acc:6.2f} %  test {100 * e.test_acc:6.2f} %"
          f"{sp}  {e.seconds:5.2f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m host.train", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--model", choices=sorted(TRAINABLE), help="train this network from scratch (host.models)")
    start.add_argument("--init", type=Path, metavar="MODEL.onnx", help="start from this trained model")
    parser.add_argument("--data", required=True, metavar="digits|FILE.npz",
                        help="'digits' (embedded, 1437 train / 360 test) or an .npz with x_train, y_train, x_test, "
                             "y_test (float NCHW, integer labels)")
    parser.add_argument("--epochs", type=int, default=None, metavar="E",
                        help="epochs (default 40 from scratch, 30 when fine-tuning)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="initialisation and batch order (default 0)")
    parser.add_argument("--lr", type=float, default=1e-2,
                        help="Adam's learning rate, cosine-decayed to 0 (default 1e-2: a pruned network has much "
                             "to recover)")
    parser.add_argument("--batch", type=int, default=64, metavar="B", help="images per step (default 64)")
    parser.add_argument("--shift", type=int, default=1, metavar="N",
                        help="move each training image by a random -N..N pixels along each axis (default 1; 0: off)")
    parser.add_argument("--prune", metavar="G:S", default=None,
                        help=f"prune every conv at granularity G ({', '.join(GRANULARITIES)}) to sparsity S with "
                             f"golden.prune, e.g. kernel:0.75, and fine-tune with the zeros fixed")
    parser.add_argument("--prune-classifier", action="store_true",
                        help="also prune the fully connected layers (default: convs only)")
    parser.add_argument("--method", choices=("magnitude", "ssl"), default="magnitude",
                        help="rank groups by magnitude as trained, or after SSL's group Lasso (default magnitude)")
    parser.add_argument("--schedule", choices=("oneshot", "gradual"), default="oneshot",
                        help="prune at once, or along Zhu and Gupta's cubic ramp (default oneshot)")
    parser.add_argument("--prune-every", type=int, default=None, metavar="K",
                        help="gradual: steps between mask updates (default: one epoch)")
    parser.add_argument("--ssl-lambda", type=float, default=1e-3, metavar="L",
                        help="ssl: weight of the group Lasso term (default 1e-3)")
    parser.add_argument("--qat", action="store_true", help="train through host.quant's int8 rounding (STE)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.onnx", action=OutputFile)
    args = parser.parse_args(argv)
    for flag, value, low in (("--epochs", args.epochs, 1), ("--batch", args.batch, 1), ("--shift", args.shift, 0),
                             ("--prune-every", args.prune_every, 1)):
        if value is not None and value < low:
            parser.error(f"{flag} must be at least {low}, not {value}")
    if not args.lr > 0:
        parser.error(f"--lr must be positive, not {args.lr}")
    if not args.ssl_lambda >= 0:
        parser.error(f"--ssl-lambda must be non-negative, not {args.ssl_lambda}")
    if args.prune is None:
        given = [f for f, v in (("--method", args.method != "magnitude"), ("--schedule", args.schedule != "oneshot"),
                                ("--prune-classifier", args.prune_classifier), ("--prune-every", args.prune_every))
                 if v]
        if given:
            parser.error(f"{given[0]} only applies with --prune G:S; add --prune or drop {given[0]}")
    spec = None
    if args.prune:
        try:
            gran, sparsity = _prune_spec(args.prune)
        except ValueError as e:
            parser.error(str(e))
        spec = PruneSpec(gran, sparsity, args.method, args.schedule, args.prune_classifier, args.prune_every,
                         args.ssl_lambda)
    try:
        data = load_dataset(args.data)
    except DataError as e:
        parser.error(f"--data: {e}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.init if args.init else TRAINABLE[args.model](Path(tmp) / "init.onnx", data.input_shape,
                                                                      data.classes, args.seed)
            model = read_model(path)
    except GraphError as e:
        parser.error(f"--init: {e}")
    if tuple(model.graph.input_shape) != data.input_shape:
        parser.error(f"the model takes inputs {tuple(model.graph.input_shape)} but {data.name}'s images are "
                     f"{data.input_shape}; train a model for this data (--model) or give matching data")
    outputs = model.graph.ops[-1].w.shape[0] if model.graph.ops[-1].w is not None else None
    if outputs is not None and outputs < data.classes:
        parser.error(f"the model has {outputs} outputs but {data.name} has {data.classes} classes")
    epochs = args.epochs or (40 if args.model else 30)
    lr = args.lr
    log = _progress if sys.stderr.isatty() else None
    t0 = time.perf_counter()
    try:
        result = train(model, data, epochs=epochs, seed=args.seed, lr=lr, batch=args.batch, shift=args.shift,
                       prune_spec=spec, qat=args.qat, log=log)
    except PruneError as e:
        parser.error(str(e))
    seconds = time.perf_counter() - t0
    acc = evaluate(model, result.params, data.x_test, data.y_test)
    acc_q = evaluate(model, result.params, data.x_test, data.y_test, qat=True) if args.qat else None
    meta = dict(data=data.name, epochs=epochs, seed=args.seed, lr=lr, batch=args.batch, shift=args.shift, qat=args.qat,
                start=args.model or Path(args.init).name, test_accuracy=round(acc, 6),
                prune=None if spec is None else dict(granularity=spec.granularity, sparsity=spec.sparsity,
                                                     method=spec.method, schedule=spec.schedule,
                                                     layers={k: round(v, 6) for k, v in result.pruned.items()}))
    write_model(model, result.params, args.output, meta)
    for name, sp in result.pruned.items():
        print(f"pruned {name}: {spec.granularity} {100 * sp:.1f} % zeros (target {100 * spec.sparsity:.1f} %)")
    if result.ssl_zeroed is not None:
        print(f"ssl: {100 * result.ssl_zeroed:.0f} % of the pruned groups had norm < 1 % of their layer's largest")
    quant = "" if acc_q is None else f", int8 (fake-quantized) {100 * acc_q:.2f} %"
    print(f"{args.model or args.init} on {data.name}: {epochs} epochs, seed {args.seed}, {seconds:.1f} s: test "
          f"accuracy {100 * acc:.2f} % ({round(acc * len(data.y_test))}/{len(data.y_test)}){quant} -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
