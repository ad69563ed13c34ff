"""Vision data readers: MNIST idx files, the fixed split, image files and labelled folders."""

import gzip

import numpy as np
import pytest

from moesuite.vision.data.digits import load_digits_images
from moesuite.vision.data.images import list_images, load_labelled_folder, read_image, save_image
from moesuite.vision.data.mnist import load_mnist, mnist_split, read_idx
from moesuite.vision.data.paths import shared_data_dir


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_idx_round_trip_and_errors(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    labels = np.array([3, 7])
    _write_idx(tmp_path / "x-images-idx3-ubyte.gz", images, 0x803)
    _write_idx(tmp_path / "x-labels-idx1-ubyte.gz", labels, 0x801)
    x, y = load_mnist(tmp_path)
    assert np.array_equal(x, images) and y.tolist() == [3, 7] and y.dtype == np.int64
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x09\x99" + b"\x00" * 20)
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as fh:
        fh.write(
            (0x803).to_bytes(4, "big")
            + b"".join(d.to_bytes(4, "big") for d in (2, 3, 4))
            + b"\x00" * 5
        )
    with pytest.raises(ValueError, match="header says"):
        read_idx(short)
    with pytest.raises(FileNotFoundError, match="no such idx file"):
        read_idx(tmp_path / "missing.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="expected exactly one"):
        load_mnist(tmp_path / "empty")


@pytest.mark.skipif(
    shared_data_dir() is None or not (shared_data_dir() / "mnist").is_dir(),
    reason="no shared MNIST",
)
def test_shared_mnist_and_the_fixed_split():
    x, y = load_mnist()
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and np.bincount(y).sum() == 10000
    train, held = mnist_split(y)
    assert len(train) == 8000 and len(held) == 2000
    assert np.bincount(y[held]).tolist() == [200] * 10
    assert not set(train) & set(held)
    again_train, again_held = mnist_split(y)
    assert np.array_equal(held, again_held) and np.array_equal(train, again_train)


def test_digits_are_in_unit_range():
    images, labels = load_digits_images()
    assert (
        images.min() == 0 and images.max() == 1 and sorted(set(labels.tolist())) == list(range(10))
    )


def test_images_read_write_and_errors(tmp_path):
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    path = save_image(tmp_path / "a.png", rgb)
    back = read_image(path, channels=3)
    assert back.shape == (5, 7, 3) and np.abs(back - rgb).max() <= 0.5 / 255 + 1e-6
    gray = save_image(tmp_path / "g.png", rgb[:, :, 0])
    assert read_image(gray).shape == (5, 7, 1)
    with pytest.raises(ValueError, match="1-channel image where a RGB image was expected"):
        read_image(gray, channels=3)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="unreadable image"):
        read_image(broken)
    with pytest.raises(ValueError, match="not an image file"):
        read_image(tmp_path / "a.txt") if (tmp_path / "a.txt").write_text("x") else None
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "nope")


def test_labelled_folder(tmp_path):
    for label in ("cat", "dog"):
        for i in range(2):
            save_image(
                tmp_path / label / f"{i}.png", np.full((4, 4, 3), 0.5 if label == "cat" else 1.0)
            )
    images, labels, classes = load_labelled_folder(tmp_path, channels=3)
    assert (
        images.shape == (4, 4, 4, 3)
        and labels.tolist() == [0, 0, 1, 1]
        and classes == ["cat", "dog"]
    )
    save_image(tmp_path / "dog" / "big.png", np.zeros((6, 6, 3)))
    with pytest.raises(ValueError, match="different sizes"):
        load_labelled_folder(tmp_path)
