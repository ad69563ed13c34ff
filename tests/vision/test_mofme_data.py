"""MoFME data: weather synthesis, paired folders, training crops, the cached weather test set."""

import numpy as np
import pytest
import torch

from moesuite.vision.data.images import save_image
from moesuite.vision.data.paired import is_paired_folder, load_pairs, pair_paths
from moesuite.vision.data.restoration import (
    EpochSampler,
    PairedCrops,
    WeatherCrops,
    weather_test_set,
)
from moesuite.vision.data.weather import WEATHERS, add_haze, synthesize


def _photo(h=64, w=80, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([x, y, 1 - x * y], -1) * 0.7 + 0.1
    return (base + 0.05 * rng.standard_normal((h, w, 3))).clip(0, 1).astype(np.float32)


def test_weather_is_deterministic_and_changes_the_image():
    clean = _photo()
    for w in WEATHERS:
        a, b = synthesize(clean, w, seed=5), synthesize(clean, w, seed=5)
        assert a.shape == clean.shape and a.dtype == np.float32
        assert np.array_equal(a, b) and not np.array_equal(a, synthesize(clean, w, seed=6))
        assert a.min() >= 0 and a.max() <= 1 and np.abs(a - clean).mean() > 0.005
    rain = synthesize(clean, "rain", seed=1)
    assert (rain >= clean - 1e-6).all()  # streaks are added
    snow = synthesize(clean, "snow", seed=1)
    assert (snow >= np.minimum(clean, 0.88) - 1e-6).all()  # composited towards bright snow
    with pytest.raises(ValueError, match="unknown weather"):
        synthesize(clean, "fog", seed=0)
    with pytest.raises(ValueError, match="RGB"):
        synthesize(clean[:, :, 0], "rain", seed=0)


def test_haze_follows_the_scattering_model():
    # on a black image I = A (1 - t): the haze is the airlight times the opacity, t in (0, 1)
    rng = np.random.default_rng(3)
    veil = add_haze(np.zeros((50, 60, 3), np.float32), rng)
    assert (veil > 0).all() and (veil < 1).all()
    # on a white image with airlight < 1 the picture darkens by the same opacity
    rng = np.random.default_rng(3)
    white = add_haze(np.ones((50, 60, 3), np.float32), rng)
    airlight = veil / (1 - (white - veil))  # I_black = A(1-t), I_white = t + A(1-t)
    assert np.allclose(airlight.std(axis=(0, 1)), 0, atol=1e-4)  # one airlight per channel


def test_paired_folders_and_their_errors(tmp_path):
    for sub in ("degraded", "clean"):
        for name in ("a", "b"):
            save_image(tmp_path / sub / f"{name}.png", _photo(20, 24))
    assert is_paired_folder(tmp_path) and [p.name for p in load_pairs(tmp_path)] == ["a", "b"]
    save_image(tmp_path / "degraded" / "c.png", _photo(20, 24))
    with pytest.raises(ValueError, match="mismatched pairs.*'c'"):
        pair_paths(tmp_path)
    save_image(tmp_path / "clean" / "c.png", _photo(20, 30))
    with pytest.raises(ValueError, match="a pair must have one size"):
        load_pairs(tmp_path)
    save_image(tmp_path / "clean" / "c.png", _photo(20, 24)[:, :, 0])
    with pytest.raises(ValueError, match="grayscale|RGB"):
        load_pairs(tmp_path)
    with pytest.raises(FileNotFoundError, match="no degraded/ or clean/ subfolder"):
        pair_paths(tmp_path / "degraded")


def test_crops_are_deterministic_balanced_and_new_every_epoch():
    images = [(_photo(seed=i) * 255).astype(np.uint8) for i in range(3)]
    ds = WeatherCrops(images, crop=16, size=30, seed=2)
    d1, c1, l1 = ds[4]
    d2, c2, l2 = ds[4]
    assert torch.equal(d1, d2) and torch.equal(c1, c2) and l1 == l2 == 1
    assert d1.shape == (3, 16, 16) and sorted({ds[i][2] for i in range(6)}) == [0, 1, 2]
    sampler = EpochSampler(10, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert sorted(first) == list(range(10)) and sorted(sampler) == list(range(10, 20))
    with pytest.raises(ValueError, match="smaller than the 99px crop"):
        WeatherCrops(images, crop=99, size=1)


def test_paired_crops_align_and_pad(tmp_path):
    for sub in ("degraded", "clean"):
        save_image(tmp_path / sub / "x.png", _photo(12, 40))
    crops = PairedCrops(load_pairs(tmp_path), crop=16, size=4)
    d, c, label = crops[0]
    assert d.shape == c.shape == (3, 16, 16) and label == -1
    assert torch.allclose(d, c)  # identical pair: identical aligned crops


def test_test_set_is_synthesised_once_and_cached(tmp_path):
    for i in range(2):
        save_image(tmp_path / "photos" / f"p{i}.png", _photo(24, 32, seed=i))
    first = weather_test_set(tmp_path / "photos", cache=tmp_path / "cache")
    assert first.path.is_file() and first.path.suffix == ".npz"
    again = weather_test_set(tmp_path / "photos", cache=tmp_path / "cache")
    assert again.names == ["p0", "p1"] and again.weathers == list(WEATHERS)
    for w in WEATHERS:
        assert all(
            np.array_equal(a, b) for a, b in zip(first.degraded[w], again.degraded[w], strict=True)
        )
    assert len(list((tmp_path / "cache").iterdir())) == 1
