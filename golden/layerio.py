"""Reading and writing layers as ``.npz`` files (the format of ``sim.run --layer``).

``weights`` (int, ``M, C, R, S``), ``activations`` (int, ``C, H, W``) and optional scalars ``stride``
and ``padding`` (default 1 and 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .layer import Layer


def load_layer(path: str | Path) -> Layer:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"layer file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # not a zip / corrupt
        raise ValueError(f"cannot read {path} as a .npz file: {e}") from e
    for key in ("weights", "activations"):
        if key not in arrays:
            raise ValueError(f"{path} has no '{key}' array (it has: {', '.join(arrays) or 'nothing'})")
    scalars = {}
    for key, default in (("stride", 1), ("padding", 0)):
        v = arrays.get(key, np.array(default))
        if v.shape != () or not np.issubdtype(v.dtype, np.integer):
            raise ValueError(f"'{key}' in {path} must be an integer scalar, not {v.dtype} of shape {v.shape}")
        scalars[key] = int(v)
    return Layer(arrays["weights"], arrays["activations"], **scalars)


def save_layer(path: str | Path, layer: Layer) -> None:
    np.savez(path, weights=layer.weights, activations=layer.activations,
             stride=np.int64(layer.stride), padding=np.int64(layer.padding))
