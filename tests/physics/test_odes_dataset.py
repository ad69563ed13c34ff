"""ODE datasets: disjoint splits, the padding mask, .npz round trip and malformed files."""

import numpy as np
import pytest

from moesuite.physics.data.odes import ODEDataset, generate, load_dataset, save_dataset


@pytest.fixture(scope="module")
def dataset():
    return generate(
        families="van_der_pol,sir,rossler",
        n_train_envs=4,
        n_adapt_envs=2,
        n_train_ics=3,
        n_test_ics=2,
        n_shots=2,
        n_times=6,
        seed=1,
    )


def test_splits_are_disjoint(dataset):
    # environments: no adaptation environment repeats a training environment's parameters
    train_params = {tuple(np.round(p[~np.isnan(p)], 12)) for p in dataset.train.params}
    adapt_params = {tuple(np.round(p[~np.isnan(p)], 12)) for p in dataset.adapt.params}
    assert len(train_params) == dataset.train.num_envs and not train_params & adapt_params
    # initial conditions: no trajectory starts from the same state in two splits
    starts = {}
    for split in ("train", "test", "adapt", "adapt_test"):
        y = dataset.split(split)
        starts[split] = {tuple(np.round(s, 6)) for s in y[:, :, 0].reshape(-1, y.shape[-1])}
        assert len(starts[split]) == y.shape[0] * y.shape[1]
    names = list(starts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not starts[a] & starts[b], (a, b)


def test_mask_marks_real_states_and_padding_is_zero(dataset):
    dims = {0: 2, 1: 3, 2: 3}
    for s in (dataset.train, dataset.adapt):
        assert s.mask.dtype == bool
        for env in range(s.num_envs):
            d = dims[int(s.family[env])]
            assert s.mask[env].sum() == d
            assert (s.fit[env][..., d:] == 0).all() and (s.test[env][..., d:] == 0).all()


def test_npz_round_trip(tmp_path, dataset):
    path = save_dataset(dataset, tmp_path / "odes.npz")
    back = load_dataset(path)
    assert back.families == dataset.families
    for name in ("train", "test", "adapt", "adapt_test"):
        assert np.array_equal(back.split(name), dataset.split(name))
    assert np.array_equal(back.train.params, dataset.train.params, equal_nan=True)
    assert back.config["n_times"] == 6
    assert not list(tmp_path.glob(".*.tmp"))


def test_subset_renumbers_families(dataset):
    sub = dataset.subset(["rossler", "van_der_pol"])
    assert sub.families == ("rossler", "van_der_pol")
    assert set(sub.train.family.tolist()) == {0, 1}
    assert np.array_equal(
        sub.train.fit[sub.train.family == 0], dataset.train.fit[dataset.train.family == 2]
    )
    with pytest.raises(ValueError, match=r"\['lorenz'\] are not in this dataset"):
        dataset.subset(["lorenz"])


def test_malformed_npz_files(tmp_path, dataset):
    with pytest.raises(FileNotFoundError, match="no such dataset file"):
        load_dataset(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_dataset(garbage)
    partial = tmp_path / "partial.npz"
    np.savez(partial, families=np.array(["sir"]), train_fit=np.zeros((1, 1, 2, 3)))
    with pytest.raises(ValueError, match=r"missing arrays \['train_family'"):
        load_dataset(partial)
    good = save_dataset(dataset, tmp_path / "good.npz")
    arrays = dict(np.load(good))
    bad_shape = dict(arrays, adapt_test=arrays["adapt_test"][:, :, :, :2])
    np.savez(tmp_path / "bad_shape.npz", **bad_shape)
    with pytest.raises(
        ValueError, match=r"bad_shape.npz: malformed ODE dataset: adapt.test must be"
    ):
        load_dataset(tmp_path / "bad_shape.npz")
    nan = dict(arrays, train_fit=np.full_like(arrays["train_fit"], np.nan))
    np.savez(tmp_path / "nan.npz", **nan)
    with pytest.raises(ValueError, match="train.fit contains NaN"):
        load_dataset(tmp_path / "nan.npz")
    bad_family = dict(arrays, train_family=arrays["train_family"] + 5)
    np.savez(tmp_path / "fam.npz", **bad_family)
    with pytest.raises(ValueError, match=r"train.family must hold integers in \[0, 2\]"):
        load_dataset(tmp_path / "fam.npz")
    with pytest.raises(ValueError, match="must end in .npz"):
        save_dataset(dataset, tmp_path / "odes.csv")


def test_dataset_validates_on_construction(dataset):
    with pytest.raises(ValueError, match="families must be non-empty and distinct"):
        ODEDataset(("a", "a", "b"), dataset.train, dataset.adapt)


def test_odebench_is_the_authors_grid_with_their_adaptation_range():
    from moesuite.physics.data.odes import ODEBENCH_NAMES, generate_odebench
    from moesuite.physics.data.odes.odebench import REFERENCE, adaptation_grid, training_grid

    ds = generate_odebench(n_test_ics=2)
    assert ds.families == ODEBENCH_NAMES and len(ds.families) == 10
    assert ds.train.num_envs == 160 and ds.adapt.num_envs == 40 and ds.state_dim == 2
    assert ds.split("train").shape == (160, 4, 20, 2) and ds.split("adapt").shape == (40, 1, 20, 2)
    for i, name in enumerate(ds.families):
        ref = REFERENCE[name]
        p = ds.train.params[ds.train.family == i][:, : len(ref)]
        # 16 environments on the authors' grid over 0.9-1.1x the reference, 2 decimals
        assert np.allclose(p, training_grid(ref, 16))
        assert np.all(p >= np.round(0.9 * ref, 2) - 1e-9) and np.all(p <= np.round(1.1 * ref, 2))
        assert np.allclose(p, np.round(p, 2))
        # adaptation at 0.8, 0.93, 1.07 and 1.2x for both the shots and the held-out ones
        a = ds.adapt.params[ds.adapt.family == i][:, : len(ref)]
        assert np.allclose(a, adaptation_grid(ref, 4))
        assert np.allclose(a[[0, -1]], np.round(ref[None] * [[0.8], [1.2]], 2))
    # one grid axis per parameter: 16 values for one, 4 x 4 for two
    assert len(np.unique(training_grid(np.array([2.1]), 16))) == 16
    assert training_grid(np.array([4.5, 0.43]), 16).shape == (16, 2)
    # initial conditions never repeat across splits (theirs reuse the two reference ones)
    starts = [ds.split(s)[:, :, 0].reshape(-1, 2) for s in ("train", "test", "adapt", "adapt_test")]
    allstarts = np.concatenate(starts)
    assert len(np.unique(np.round(allstarts, 9), axis=0)) == len(allstarts)
    # the families of ours are untouched: 'all' still means our ten
    from moesuite.physics.data.odes import parse_families

    assert not set(parse_families("all")) & set(ODEBENCH_NAMES)


def test_hold_out_validation_splits_the_in_domain_test_set():
    from moesuite.physics.mixer.training import hold_out_validation

    ds = generate(families="van_der_pol", n_train_envs=3, n_adapt_envs=1, n_test_ics=3, n_times=5)
    kept, val = hold_out_validation(ds, 1)
    assert kept.train.test.shape[1] == 2 and val.y.shape[:2] == (3, 1)
    assert np.array_equal(val.y.numpy(), ds.train.test[:, :1])
    assert np.array_equal(kept.train.test, ds.train.test[:, 1:])
    with pytest.raises(ValueError, match="cannot hold out 3 of 3"):
        hold_out_validation(ds, 3)
