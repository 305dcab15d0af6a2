"""Reading and writing layers as ``.npz`` files (the format of ``sim.run --layer``).

``weights`` (int, ``M, C, R, S``), ``activations`` (int, ``C, H, W``) and optional scalars ``stride``
and ``padding`` (default 1 and 0); for arrays with an output stage (``--epilogue 1``) optionally
``bias`` ``(M,)`` or ``psum`` ``(M, E, F)``, ``mult`` and ``shift`` ``(M,)`` and a scalar ``relu``
(``golden.epilogue.OutputStage``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .epilogue import OutputStage
from .layer import Layer

OUT_STAGE_KEYS = ("bias", "psum", "mult", "shift")

LAYER_FILE = ".npz with 'weights' and 'activations' integer arrays"
"""What a layer file is, as the error for a file that is not one says."""


def read_arrays(path: str | Path, what: str = LAYER_FILE) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``; ``ValueError`` with one line if it is missing or not an
    ``.npz`` of numeric arrays: ``<path> is not a valid layer file (<what>): <reason>``.

    The format is checked before ``np.load``, which takes any file that is not a zip or ``.npy`` for a
    pickle and would only say ``allow_pickle``.
    """
    path = Path(path)

    def invalid(reason: str) -> ValueError:
        return ValueError(f"{path} is not a valid layer file ({what}): {reason}")

    if not path.exists():
        raise ValueError(f"layer file {path} does not exist")
    if path.is_dir():
        raise invalid("it is a directory")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise ValueError(f"cannot read layer file {path}: {e.strerror or e}") from e
    if not head:
        raise invalid("the file is empty")
    if head.startswith(b"\x93NUMPY"):
        raise invalid("it is a single .npy array; save a layer with np.savez(path, weights=W, activations=A)")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # what np.load takes for a zip (.npz)
        raise invalid("it is not a zip archive (np.savez writes one)")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # a damaged zip
        raise invalid(f"damaged zip archive ({e})") from e
    arrays = {}
    with z:
        for k in z.files:
            try:
                arrays[k] = z[k]
            except Exception as e:
                if "allow_pickle" in str(e):  # numpy refuses object arrays without allow_pickle
                    raise invalid(f"'{k}' is an object (pickled) array, not numbers") from e
                raise invalid(f"cannot read '{k}' ({e})") from e
    for k, v in arrays.items():
        if not isinstance(v, np.ndarray):
            raise invalid(f"'{k}' is not a NumPy array")
        if v.dtype.hasobject:
            raise invalid(f"'{k}' is an object (pickled) array, not numbers")
    return arrays


def load_layer(path: str | Path) -> Layer:
    """Read a layer; ``ValueError`` with one line if ``path`` is missing or not a valid layer file."""
    arrays = read_arrays(path)
    for key in ("weights", "activations"):
        if key not in arrays:
            raise ValueError(f"{path} is not a valid layer file ({LAYER_FILE}): it has no '{key}' array "
                             f"(it has: {', '.join(arrays) or 'nothing'})")
    scalars = {}
    for key, default in (("stride", 1), ("padding", 0)):
        v = arrays.get(key, np.array(default))
        if v.shape != () or not np.issubdtype(v.dtype, np.integer):
            raise ValueError(f"'{key}' in {path} must be an integer scalar, not {v.dtype} of shape {v.shape}")
        scalars[key] = int(v)
    out = None
    if any(k in arrays for k in (*OUT_STAGE_KEYS, "relu")):
        relu = arrays.get("relu", np.array(False))
        if relu.shape != () or not (np.issubdtype(relu.dtype, np.integer) or relu.dtype == bool):
            raise ValueError(f"'relu' in {path} must be a boolean scalar, not {relu.dtype} of shape {relu.shape}")
        out = OutputStage(**{k: arrays.get(k) for k in OUT_STAGE_KEYS}, relu=bool(relu))
    return Layer(arrays["weights"], arrays["activations"], **scalars, out=out)


def save_layer(path: str | Path, layer: Layer) -> None:
    extra = {}
    if layer.out is not None:
        extra = {k: getattr(layer.out, k) for k in OUT_STAGE_KEYS if getattr(layer.out, k) is not None}
        extra["relu"] = np.bool_(layer.out.relu)
    np.savez(path, weights=layer.weights, activations=layer.activations,
             stride=np.int64(layer.stride), padding=np.int64(layer.padding), **extra)
