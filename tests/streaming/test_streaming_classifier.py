"""DriftMoEClassifier: river conformance, routing, drift recovery, robustness."""

import random

import numpy as np
import pytest
import torch
from river import base, checks, tree
from river.datasets import synth

from moesuite.core.testing import assert_aux_consumed
from moesuite.streaming import DriftMoEClassifier, DriftStream, prequential
from moesuite.streaming.models.router import OnlineRouter

# checks that replay the same 200-2000 instances many times; each is exercised once below instead
_SLOW = {"check_bounded_memory_growth"}


@pytest.mark.parametrize(
    "params", list(DriftMoEClassifier._unit_test_params()), ids=["data", "task"]
)
def test_river_check_estimator(params):
    model = DriftMoEClassifier(**params)
    for check in checks.yield_checks(model):
        if check.__name__ in _SLOW and params.get("variant") == "task":
            continue
        check(model.clone())


class _Fixed(base.Classifier):
    """An expert that never learns: right on one regime (sign of x0) and wrong on the other."""

    def __init__(self, regime: int = 0):
        self.regime = regime

    def learn_one(self, x, y, w=1.0):
        pass

    def predict_proba_one(self, x):
        rule = (x["x1"] > 0) if (x["x0"] > 0) == bool(self.regime) else (x["x1"] <= 0)
        return {True: float(rule), False: 1.0 - float(rule)}


def _regime_stream(n, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        x = {"x0": rng.uniform(-1, 1), "x1": rng.uniform(-1, 1)}
        yield x, x["x1"] > 0


def test_router_learns_which_expert_owns_which_regime():
    model = DriftMoEClassifier(
        n_experts=2,
        top_k=1,
        train_k=1,
        warmup=0,
        batch_size=16,
        lr=1e-2,
        drift_detector=None,
        seed=0,
    )
    model._experts = [_Fixed(0), _Fixed(1)]  # expert 0 owns x0 <= 0, expert 1 owns x0 > 0
    r = prequential(model, _regime_stream(3000), window=500)
    assert r.windows[-1][1] > 0.95, r.windows  # routes to the right expert almost always
    picks = []
    for x, _ in _regime_stream(200, seed=1):
        model.predict_proba_one(x)
        w = model._route(x)[1]
        picks.append(int(np.argmax(w)) == int(x["x0"] > 0))
    assert np.mean(picks) > 0.95


def test_numpy_fast_path_matches_torch_reference():
    r = OnlineRouter(n_inputs=5, n_experts=3, hidden=8, seed=0)
    v = np.random.default_rng(0).normal(size=(4, 5))
    for _ in range(5):
        r.fit_batch(v, np.eye(3)[[0, 1, 2, 0]], np.ones((4, 3)))
    with torch.no_grad():
        ref = r(torch.as_tensor(v, dtype=torch.float32)).output.numpy()
    fast = np.stack([r.logits_one(row) for row in v])
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-5)


def _abrupt_stagger(n, drift_at, seed=0):
    return DriftStream(
        [
            synth.STAGGER(classification_function=0, seed=seed),
            synth.STAGGER(classification_function=1, seed=seed + 1),
        ],
        positions=[drift_at],
        widths=1,
        seed=seed,
        n_samples=n,
    )


def _recovery_window(windows, drift_at):
    """Index of the first window after the drift back within 2 points of the pre-drift window."""
    acc = dict(windows)
    before = acc[drift_at]
    after = [(t, a) for t, a in windows if t > drift_at]
    return (
        next((i for i, (_, a) in enumerate(after) if a >= before - 0.02), len(after)),
        before,
        after[0][1],
    )


@pytest.mark.parametrize("params", [{}, {"drift_detector": None}], ids=["default", "no-resets"])
def test_accuracy_recovers_after_abrupt_drift_faster_than_a_tree(params):
    model = DriftMoEClassifier(seed=0, **params)
    r = prequential(model, _abrupt_stagger(6000, 3000), window=250)
    moe_i, before, first_after = _recovery_window(r.windows, 3000)
    assert before > 0.95 and first_after < before - 0.05  # learnt the concept; the drift hurts
    ht = tree.HoeffdingTreeClassifier(grace_period=200, delta=0.01)  # the experts' own tree
    ht_i, _, _ = _recovery_window(
        prequential(ht, _abrupt_stagger(6000, 3000), window=250).windows, 3000
    )
    # with resets back within one window; without, the experts regrow (grace period 200: 3 windows)
    assert moe_i <= (3 if params else 1) and moe_i < ht_i, (r.windows, ht_i)


def test_task_variant_learns_a_multiclass_stream():
    model = DriftMoEClassifier(variant="task", seed=0)
    stream = synth.LED(seed=0, noise_percentage=0.0)
    r = prequential(model, (xy for _, xy in zip(range(3000), stream, strict=False)), window=500)
    assert r.windows[-1][1] > 0.8
    assert len(model._experts) == 10


def test_learn_one_survives_new_categories_missing_features_and_type_changes():
    model = DriftMoEClassifier(n_experts=3, warmup=5, batch_size=4, n_inputs=4, seed=0)
    assert model.top_k == 3
    rng = random.Random(0)
    for i in range(300):
        x = {"a": rng.random(), "colour": rng.choice(["red", "blue"])}
        if i > 100:
            x["colour"] = f"new-{i}"  # a new category every instance (more than n_inputs slots)
        if i % 7 == 0:
            x.pop("a")  # missing feature
        if i % 11 == 0:
            x["late"] = float("nan")  # NaN: treated as missing by the router
        model.learn_one(x, i % 3)
        proba = model.predict_proba_one(x)
        assert abs(sum(proba.values()) - 1) < 1e-9
    assert set(proba) == {0, 1, 2}
    model.learn_one({}, 1)  # an empty instance
    assert model.predict_one({}) in {0, 1, 2}


def test_clone_and_seed_give_identical_runs():
    a = DriftMoEClassifier(n_experts=4, seed=3)
    b = a.clone()
    stream = list(_abrupt_stagger(600, 300))
    preds_a = [(a.predict_one(x), a.learn_one(x, y))[0] for x, y in stream]
    preds_b = [(b.predict_one(x), b.learn_one(x, y))[0] for x, y in stream]
    assert preds_a == preds_b


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"variant": "chaos"}, "variant must be one of"),
        ({"top_k": 7}, "top_k=7 is larger than n_experts=6"),
        ({"n_experts": 0}, "n_experts must be an int >= 1"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"mask_experts": -1}, "mask_experts must be None"),
    ],
)
def test_bad_parameters_name_the_parameter(bad, match):
    with pytest.raises(ValueError, match=match):
        DriftMoEClassifier(**bad)


def test_task_variant_with_too_many_classes_says_what_to_change():
    model = DriftMoEClassifier(variant="task", n_experts=2)
    model.learn_one({"a": 1.0}, "x")
    model.learn_one({"a": 2.0}, "y")
    with pytest.raises(ValueError, match="raise n_experts"):
        model.learn_one({"a": 3.0}, "z")


class _Rule(base.Classifier):
    """An expert that never learns and always predicts ``x1 > 0``."""

    def learn_one(self, x, y, w=1.0):
        pass

    def predict_proba_one(self, x):
        return {True: float(x["x1"] > 0), False: float(x["x1"] <= 0)}


def _flip_stream(n, wrong_first, seed=0):
    """Labels ``x1 > 0`` that disagree with :class:`_Rule` on one half of the stream."""
    rng = random.Random(seed)
    for i in range(n):
        x = {"x1": rng.uniform(-1, 1)}
        wrong = (i < n // 2) == wrong_first
        yield x, (x["x1"] > 0) != wrong


def test_an_expert_is_reset_when_its_error_rises_not_when_it_falls():
    # river's ADWIN flags a change in either direction: a fall of the error too
    from river import drift

    adwin = drift.ADWIN(delta=0.001)
    flagged = False
    for i in range(2000):
        adwin.update(1.0 if i < 1000 else 0.0)
        flagged |= adwin.drift_detected
    assert flagged

    def resets(wrong_first):
        model = DriftMoEClassifier(
            n_experts=1, top_k=1, train_k=1, warmup=0, expert=_Rule(), seed=0
        )
        for x, y in _flip_stream(2000, wrong_first):
            model.predict_one(x)
            model.learn_one(x, y)
        return model.n_resets_

    assert resets(wrong_first=True) == 0  # the error falls: the expert is kept
    assert resets(wrong_first=False) >= 1  # the error rises: the expert is replaced


def _batch(seed=0, B=32, d=5, E=3):
    rng = np.random.default_rng(seed)
    V = rng.normal(size=(B, d))
    M = (rng.random((B, E)) > 0.5).astype(float)
    valid = (rng.random((B, E)) > 0.3).astype(float)
    return V, M, valid


@pytest.mark.parametrize("lb_weight", [0.0, 0.05])
def test_numpy_trainer_takes_the_same_adam_steps_as_torch(lb_weight):
    V, M, valid = _batch()
    kw = dict(n_inputs=5, n_experts=3, hidden=8, k=2, lr=1e-2, lb_weight=lb_weight, seed=0)
    fast, ref = OnlineRouter(trainer="numpy", **kw), OnlineRouter(trainer="torch", **kw)
    assert fast._numpy.lb_weight == ref.head.lb_weight == lb_weight  # the same aux weight
    assert fast._numpy.k == ref.head.k == 2
    for _ in range(20):
        got, want = fast.fit_batch(V, M, valid), ref.fit_batch(V, M, valid)
        for name in ("loss", "task_loss", "aux_loss"):
            assert abs(got[name] - want[name]) < 1e-4, (name, got, want)
        assert (got["aux_loss"] > 0) == (lb_weight > 0)
        assert got["loss"] == pytest.approx(got["task_loss"] + got["aux_loss"])
    x = torch.as_tensor(V, dtype=torch.float32)
    with torch.no_grad():  # forward() of the numpy-trained router sees the trained weights
        np.testing.assert_allclose(
            fast(x).output.numpy(), ref(x).output.numpy(), rtol=1e-3, atol=1e-4
        )
    np.testing.assert_allclose(fast.logits_one(V[0]), ref.logits_one(V[0]), rtol=1e-3, atol=1e-4)
    assert fast.loss_sums == pytest.approx(ref.loss_sums, rel=1e-4)


def test_the_router_training_step_consumes_its_aux_losses():
    V, M, valid = (torch.as_tensor(a, dtype=torch.float32) for a in _batch())
    router = OnlineRouter(n_inputs=5, n_experts=3, hidden=8, lb_weight=0.01, trainer="torch")
    assert assert_aux_consumed(router, lambda: router.training_step(V, M, valid)["loss"]) == 1
    # the same check fails on a step that drops them
    with pytest.raises(AssertionError, match="load_balance"):
        assert_aux_consumed(router, lambda: router.training_step(V, M, valid)["task_loss"])


def test_load_balancing_spreads_the_routing():
    # every instance rewards expert 0 only: without balancing the router collapses onto it
    rng = np.random.default_rng(0)
    V = rng.normal(size=(32, 4))
    M = np.zeros((32, 4))
    M[:, 0] = 1.0

    def top1_share(lb_weight):
        r = OnlineRouter(n_inputs=4, n_experts=4, hidden=16, lr=1e-2, lb_weight=lb_weight, seed=0)
        for _ in range(300):
            r.fit_batch(V, M, np.ones_like(M))
        picks = np.argmax(np.stack([r.logits_one(v) for v in V]), axis=1)
        return np.bincount(picks, minlength=4).max() / len(V)

    assert top1_share(0.0) == 1.0
    assert top1_share(5.0) < 0.75


def test_the_classifier_hands_its_aux_weight_to_the_router_and_logs_the_losses():
    model = DriftMoEClassifier(n_experts=3, lb_weight=0.05, seed=0)
    assert model._router._numpy.lb_weight == model._router.head.lb_weight == 0.05
    for x, y in _abrupt_stagger(320, 160):
        model.predict_one(x)
        model.learn_one(x, y)
    losses = model.router_losses()
    assert losses["steps"] == 320 // model.batch_size
    assert losses["aux_loss"] > 0
    assert losses["loss"] == pytest.approx(losses["task_loss"] + losses["aux_loss"])


def test_variant_defaults_for_router_lr_and_expert_leaves():
    data, task = DriftMoEClassifier(), DriftMoEClassifier(variant="task")
    assert (data._router._numpy.lr, task._router._numpy.lr) == (2e-3, 3e-2)
    assert DriftMoEClassifier(variant="task", lr=1e-3)._router._numpy.lr == 1e-3
    assert (data._prototype.leaf_prediction, task._prototype.leaf_prediction) == ("nba", "mc")
    assert data._prototype.grace_period == task._prototype.grace_period == 200
    assert DriftMoEClassifier.paper_params()["lr"] == 2e-3


def test_the_paper_preset_is_paper_params_and_takes_experts_and_variant():
    from moesuite.streaming import create_model
    from moesuite.streaming.models import has_router

    paper = create_model("driftmoe-paper", seed=3)
    expected = DriftMoEClassifier(**DriftMoEClassifier.paper_params(), seed=3)
    assert paper._get_params().keys() == expected._get_params().keys()
    for name in ("n_experts", "top_k", "train_k", "batch_size", "router_hidden", "mask_experts"):
        assert getattr(paper, name) == getattr(expected, name), name
    assert (paper.drift_detector, paper.bagging_lambda, paper.seed) == (None, None, 3)
    assert (paper._prototype.grace_period, paper._prototype.delta) == (50, 1e-7)
    assert has_router("driftmoe-paper") and create_model("driftmoe-paper", n_experts=4)._E == 4
    task = create_model("driftmoe-paper", variant="task")
    assert (task.task_output, task.batch_size) == ("router", 1)
