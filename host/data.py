"""Labelled image sets for training and for measuring accuracy: the shipped digits set or a user's ``.npz``.

Accuracy beside cycles needs data every user has: :func:`load_dataset` ``("digits")`` is scikit-learn's
``load_digits`` (1,797 grey 8x8 digits, UCI, CC BY 4.0), embedded here as ``digits.npz`` (uint8 pixels
0..16, 45 kB) so that ``host.net --eval`` runs without scikit-learn installed. Inputs are ``pixel / 16``
in [0, 1], shape ``(N, 1, 8, 8)``. The split is fixed: the last :data:`DIGITS_TEST` images are the test
set, never trained or calibrated on, so every accuracy in the project is measured on the same 360 images.

Any other spec is a path to an ``.npz`` holding exactly ``x_train``, ``y_train``, ``x_test``, ``y_test``
(float NCHW images, integer labels ``0..classes-1``): CIFAR-10 converted offline loads the same way. A
file that does not fit raises :class:`DataError` with one line naming the key and what it should be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIGITS_FILE = Path(__file__).with_name("digits.npz")
"""``images`` (1797, 8, 8) uint8 0..16 and ``labels`` (1797,) uint8, in scikit-learn's order."""

DIGITS_TEST = 360
"""The last images of ``load_digits`` that form the digits test set."""

DIGITS_SCALE = 16.0
"""The digits' largest pixel value: inputs are ``pixel / DIGITS_SCALE`` in [0, 1]."""

KEYS = ("x_train", "y_train", "x_test", "y_test")
"""The arrays a ``--data`` file holds (and nothing else)."""


class DataError(ValueError):
    """A data set that cannot be used; the message is one line naming the problem and the fix."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test images (float32 NCHW) with integer labels (int64) in ``0..classes-1``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def calibration_subset(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` distinct training images drawn with ``seed``: quantization calibrates on these, never on
        the test split, so the accuracy measured on the test split is not flattered by calibration."""
        if not 1 <= n <= len(self.x_train):
            raise DataError(f"calibration needs 1..{len(self.x_train)} images (the training split of {self.name}), "
                            f"not {n}")
        idx = np.sort(np.random.default_rng(seed).choice(len(self.x_train), n, replace=False))
        return self.x_train[idx]


def digits() -> Dataset:
    """The embedded digits set with its fixed split (1,437 train, 360 test)."""
    with np.load(DIGITS_FILE) as f:
        x = (f["images"].astype(np.float32) / DIGITS_SCALE)[:, None]
        y = f["labels"].astype(np.int64)
    cut = len(x) - DIGITS_TEST
    return Dataset(x[:cut], y[:cut], x[cut:], y[cut:], "digits", 10)


def load_dataset(spec: str | Path) -> Dataset:
    """``"digits"`` or the ``.npz`` file at ``spec``, checked (:class:`DataError` on the first problem)."""
    if str(spec) == "digits":
        return digits()
    path = Path(spec)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; give 'digits' or an .npz with {', '.join(KEYS)}")
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as e:  # not a NumPy file at all
        raise DataError(f"{path} is not a readable .npz archive ({e}); save it with numpy.savez") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds one array, not an .npz archive with {', '.join(KEYS)}; save it with "
                        f"numpy.savez")
    try:
        with f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as e:  # object arrays need pickle, which a data file must not
        raise DataError(f"{path}: {e}; store numeric arrays only") from None
    return _checked(arrays, path)


def _checked(arrays: dict[str, np.ndarray], path: Path) -> Dataset:
    missing = [k for k in KEYS if k not in arrays]
    extra = sorted(set(arrays) - set(KEYS))
    if missing or extra:
        what = "; ".join(s for s in (f"missing {', '.join(missing)}" if missing else "",
                                     f"unexpected {', '.join(extra)}" if extra else "") if s)
        raise DataError(f"{path}: {what}; the file must hold exactly {', '.join(KEYS)}")
    shape = None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if not np.issubdtype(x.dtype, np.floating):
            raise DataError(f"{path}: x_{split} has dtype {x.dtype}; images must be float (scale them, e.g. "
                            f"pixel / 255)")
        if x.ndim != 4 or 0 in x.shape:
            raise DataError(f"{path}: x_{split} has shape {x.shape}; images must be non-empty float NCHW "
                            f"(N, C, H, W)")
        if shape is not None and x.shape[1:] != shape:
            raise DataError(f"{path}: x_test images are {x.shape[1:]} but x_train images are {shape}; both "
                            f"splits need one (C, H, W)")
        shape = x.shape[1:]
        if not np.isfinite(x).all():
            raise DataError(f"{path}: x_{split} holds NaN or infinite values; images must be finite")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{split} has dtype {y.dtype}; labels must be integers 0..classes-1")
        if y.shape != (len(x),):
            raise DataError(f"{path}: y_{split} has shape {y.shape}; it needs one label per image, shape "
                            f"({len(x)},)")
        if y.min() < 0:
            raise DataError(f"{path}: y_{split} holds label {int(y.min())}; labels must be 0..classes-1")
    classes = int(arrays["y_train"].max()) + 1
    if classes < 2:
        raise DataError(f"{path}: y_train holds a single class; classification needs at least two")
    if arrays["y_test"].max() >= classes:
        raise DataError(f"{path}: y_test holds label {int(arrays['y_test'].max())} but y_train's labels are "
                        f"0..{classes - 1}; every test class must occur in training")
    return Dataset(arrays["x_train"].astype(np.float32), arrays["y_train"].astype(np.int64),
                   arrays["x_test"].astype(np.float32), arrays["y_test"].astype(np.int64), path.stem, classes)
