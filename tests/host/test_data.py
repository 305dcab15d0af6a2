"""Data sets (``host.data``): the embedded digits split and the checks on a user's ``.npz``."""

from __future__ import annotations

import numpy as np
import pytest

from host.data import DIGITS_TEST, DataError, load_dataset


def _good(n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return dict(x_train=rng.random((n_train, 3, 4, 4), np.float32), y_train=np.arange(n_train) % 3,
                x_test=rng.random((n_test, 3, 4, 4), np.float32), y_test=np.arange(n_test) % 3)


def _file(tmp_path, **arrays) -> str:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def test_digits_has_the_fixed_split_scaled_to_the_unit_interval():
    d = load_dataset("digits")
    assert (len(d.x_train), len(d.x_test)) == (1437, DIGITS_TEST) == (1437, 360)
    assert d.x_train.shape[1:] == d.input_shape == (1, 8, 8) and d.x_train.dtype == np.float32
    assert d.x_train.min() == 0 and d.x_train.max() == 1 and d.classes == 10
    assert sorted(set(d.y_test.tolist())) == list(range(10))


def test_the_embedded_digits_are_scikit_learns():
    sklearn = pytest.importorskip("sklearn.datasets")
    ref = sklearn.load_digits()
    d = load_dataset("digits")
    np.testing.assert_array_equal(np.concatenate([d.x_train, d.x_test])[:, 0] * 16, ref.images)
    np.testing.assert_array_equal(np.concatenate([d.y_train, d.y_test]), ref.target)


def test_calibration_images_come_from_the_training_split_only():
    d = load_dataset("digits")
    cal = d.calibration_subset(50, seed=3)
    assert cal.shape == (50, 1, 8, 8)
    train = {x.tobytes() for x in d.x_train}
    assert all(x.tobytes() in train for x in cal)
    np.testing.assert_array_equal(cal, d.calibration_subset(50, seed=3))
    assert not np.array_equal(cal, d.calibration_subset(50, seed=4))
    with pytest.raises(DataError, match=r"^calibration needs 1\.\.1437 images .* not 2000$"):
        d.calibration_subset(2000)


def test_a_good_npz_loads_with_its_class_count(tmp_path):
    d = load_dataset(_file(tmp_path, **_good()))
    assert (d.name, d.classes, d.input_shape, len(d.x_train), len(d.x_test)) == ("data", 3, (3, 4, 4), 6, 4)
    assert d.y_train.dtype == np.int64 and d.x_test.dtype == np.float32


def _bad(**change):
    arrays = _good()
    for k, v in change.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    return arrays


@pytest.mark.parametrize("arrays, message", [
    (_bad(y_test=None), r"missing y_test; the file must hold exactly x_train, y_train, x_test, y_test"),
    (_bad(labels=np.zeros(3)), r"unexpected labels; the file must hold exactly"),
    (_bad(x_train=np.zeros((6, 3, 4, 4), np.uint8)), r"x_train has dtype uint8; images must be float"),
    (_bad(x_test=np.zeros((4, 48), np.float32)), r"x_test has shape \(4, 48\); images must be non-empty float NCHW"),
    (_bad(x_test=np.zeros((4, 1, 4, 4), np.float32)), r"x_test images are \(1, 4, 4\) but x_train images are "
                                                        r"\(3, 4, 4\)"),
    (_bad(x_train=np.full((6, 3, 4, 4), np.nan, np.float32)), r"x_train holds NaN or infinite values"),
    (_bad(y_train=np.zeros(6, np.float32)), r"y_train has dtype float32; labels must be integers"),
    (_bad(y_train=np.zeros(5, np.int64)), r"y_train has shape \(5,\); it needs one label per image, shape \(6,\)"),
    (_bad(y_test=np.array([0, -1, 1, 2])), r"y_test holds label -1; labels must be 0\.\.classes-1"),
    (_bad(y_test=np.array([0, 1, 2, 3])), r"y_test holds label 3 but y_train's labels are 0\.\.2"),
    (_bad(y_train=np.zeros(6, np.int64)), r"y_train holds a single class"),
])
def test_bad_npz_files_are_refused_in_one_line(tmp_path, arrays, message):
    path = _file(tmp_path, **arrays)
    with pytest.raises(DataError, match=message) as e:
        load_dataset(path)
    assert "\n" not in str(e.value) and str(e.value).startswith(path)


def test_missing_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"does not exist; give 'digits' or an \.npz"):
        load_dataset(tmp_path / "none.npz")
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(DataError, match=r"is not a readable \.npz archive"):
        load_dataset(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"holds one array, not an \.npz archive"):
        load_dataset(tmp_path / "one.npy")
    np.savez(tmp_path / "obj.npz", x_train=np.array([None]), y_train=[0], x_test=[0.0], y_test=[0])
    with pytest.raises(DataError, match=r"store numeric arrays only"):
        load_dataset(tmp_path / "obj.npz")
