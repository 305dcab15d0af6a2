"""Accuracy beside cycles: a network's top-1 accuracy on a test split, on the array's arithmetic (``host.net --eval``).

A speedup means nothing without the accuracy it costs, and the cost has two causes that this report keeps
apart, on the same held-out test images (never trained or calibrated on):

* **float** — the model as given, in float64 (:func:`host.graph.run_float`; a QDQ model with its
  dequantized weights and unrounded activations: its pairs are read for their scales only);
* **float pruned** — the same float model with the weights that pruning removed from the int8 network
  zeroed (the int8 pruning's own mask, :func:`pruned_graph`): float → float pruned is the *pruning* loss.
  Without ``--prune`` it is the model as given, which may already be pruned (e.g. by ``host.train``); the
  report then gives each layer's measured weight sparsity, so a pruned model says so;
* **int8** — the quantized, pruned network on the NumPy int8 reference, which is bit-exact with the RTL
  (every layer's passes are checked against it, and sampled images run on the RTL): float pruned → int8
  is the *quantization* loss.

The whole test split runs through the int8 reference as one batch (:func:`host.quant.run_int` without a
per-image callback). The golden cycle model depends on a layer's weights and shape only, never on the
activations' values, so cycles per image come from one image's run (``host.net.run_network``), not 360.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from golden import metrics

from .data import Dataset
from .graph import Graph, run_float
from .quant import QuantNet, run_int


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of ``logits`` ``(N, classes)`` against integer ``labels`` ``(N,)``."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def pruned_graph(net: QuantNet) -> Graph:
    """``net``'s float graph with every weight its int8 pruning removed set to zero: the float model
    pruned exactly as the int8 one is (same mask), so the pruning loss is measured alone."""
    kept = {s.op.name: s.kept for s in net.steps if s.kept is not None}
    ops = [replace(op, w=op.w * kept[op.name]) if op.name in kept else op for op in net.graph.ops]
    return replace(net.graph, ops=ops)


def weight_sparsity(graph: Graph) -> dict[str, float]:
    """Each conv and fully connected layer's fraction of zero weights, as the model gives them."""
    return {op.name: round(float(metrics.sparsity(op.w)), 4) for op in graph.ops if op.kind in ("Conv", "Gemm")}


def int8_logits(net: QuantNet, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The int8 network's outputs on images ``x`` ``(N, ...)`` (the NumPy reference, one batch) and
    their dequantized values (the logits)."""
    out = net.graph.output
    q = run_int(net, net.quantize_input(x))[out]
    return q, q * net.scales[out]


def rtl_images(rtl: str, sample: int, n: int, seed: int) -> list[int]:
    """The test images that also run on the RTL: all of them, ``sample`` drawn with ``seed``, or none."""
    if rtl == "all":
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), min(sample, n))) if rtl == "sample" else []


OnRtl = Callable[[np.ndarray], tuple[np.ndarray, list[dict]]]
"""One integer image through the array's RTL: (the network's integer outputs, its layers' ``ArrayRun`` rows)."""


def evaluate(net: QuantNet, data: Dataset, calibration: int, prune: str | None, cost: dict,
             images: list[int], on_rtl: OnRtl) -> tuple[dict, np.ndarray]:
    """The accuracy report (module docstring) and the int8 network's dequantized logits ``(N, classes)``.

    ``cost`` is ``run_network``'s report on one test image (cycles per layer and in total); ``images``
    are test images that also run on the array, each through ``on_rtl(xq)`` -> (the network's integer
    outputs, the ``ArrayRun`` rows of its layers), and must equal the batch reference exactly."""
    graph = net.graph
    x, y = data.x_test, data.y_test
    acc_float = accuracy(run_float(graph, x)[graph.output], y)
    pruned = any(s.kept is not None for s in net.steps)
    acc_pruned = accuracy(run_float(pruned_graph(net), x)[graph.output], y) if pruned else acc_float
    q, logits = int8_logits(net, x)
    acc_int8 = accuracy(logits, y)
    xq = net.quantize_input(x)
    rtl = []
    for i in images:
        got, rows = on_rtl(xq[i])
        rtl.append({"image": i, "passes": sum(r["rtl_passes"] for r in rows),
                    "exact": bool(np.array_equal(got, q[i]) and all(r["rtl_ok"] for r in rows))})
    t = cost["total"]
    sparsity = weight_sparsity(graph)
    report = {
        "data": data.name, "test_images": len(x), "classes": data.classes,
        "calibration_images": calibration,
        "accuracy": {"float": acc_float, "float_pruned": acc_pruned, "int8": acc_int8},
        "loss": {"pruning": acc_float - acc_pruned, "quantization": acc_pruned - acc_int8},
        "pruning": (f"--prune {prune}: float pruned is the float model with int8 pruning's mask" if pruned else
                    "none: float pruned is the model as given"
                    + (" (already pruned: see model_weight_sparsity)" if any(sparsity.values()) else "")),
        "model_weight_sparsity": sparsity,
        "int8_weight_sparsity": {r["name"]: round(float(r["sparsity"]), 4) for r in cost["steps"]
                                 if r["on"] == "array"},
        "cycles_per_image": t["cycles"], "dense_cycles_per_image": t["dense_cycles"], "speedup": t["speedup"],
        "rtl_images": rtl, "rtl_exact": all(r["exact"] for r in rtl),
    }
    return report, logits


def summary(ev: dict) -> str:
    """One line for the terminal."""
    a = ev["accuracy"]
    rtl = ev["rtl_images"]
    return (f"{ev['data']}: top-1 float {a['float']:.4f} -> float pruned {a['float_pruned']:.4f} -> int8 "
            f"{a['int8']:.4f} on {ev['test_images']} test images (calibrated on {ev['calibration_images']} training "
            f"images); {ev['cycles_per_image']} cycles per image, {ev['speedup']:.2f}x over the dense array; "
            f"{len(rtl)} images on the RTL {'exact' if ev['rtl_exact'] else 'MISMATCH'}")
