"""DriftMoE: a neural router co-trained with Hoeffding-tree experts on a drifting stream.

"DriftMoE: A Mixture of Experts Approach to Handle Concept Drifts" (2025), as a river
classifier. Index legend: ``E`` experts, ``k`` experts that predict, ``K`` experts that learn
each instance (MoE-Data), ``d`` router input width, ``B`` router mini-batch. How it works and
why the defaults differ from the paper: ``packages/streaming/docs/driftmoe.md``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
from river import base, tree

from moesuite.streaming.models._registry import MODELS
from moesuite.streaming.models.features import FeatureVectorizer
from moesuite.streaming.models.router import OnlineRouter

__all__ = ["DriftMoEClassifier"]

_VARIANTS = ("data", "task")
_TASK_OUTPUTS = ("product", "router")
# per-variant defaults of the arguments left at None: (n_experts, router learning rate)
_VARIANT_DEFAULTS = {"data": (6, 2e-3), "task": (32, 3e-2)}


def _canonical(x: dict) -> dict:
    """``x`` with its keys in sorted order (by ``repr`` when the keys are not comparable)."""
    try:
        keys = sorted(x)
    except TypeError:
        keys = sorted(x, key=repr)
    return {k: x[k] for k in keys}


class DriftMoEClassifier(base.Classifier):
    """DriftMoE: a small neural router over a pool of incremental Hoeffding-tree experts.

    For each instance the router (an MLP over an online-scaled feature vector ``v[d]``) gives
    one logit per expert, ``[E]``. MoE-Data (``variant="data"``) predicts with its ``top_k``
    experts' class probabilities weighted by ``softmax(logits / temperature)``; its ``train_k``
    best experts learn the instance (all of them for the first ``warmup`` instances). MoE-Task
    (``variant="task"``) has one one-vs-rest expert per class, and the router's weight for
    class ``c`` times expert ``c``'s positive probability scores class ``c``. After each label
    the correctness of the measured experts is a multi-hot mask, and every ``batch_size``
    instances the router takes one Adam step on the mini-batch ``[B, d] -> [B, E]``:
    masked binary cross-entropy plus ``lb_weight`` times the core's load-balancing loss.
    An expert whose error rises (ADWIN) is replaced by a fresh one.

    The defaults are this package's tuned configuration; :meth:`paper_params` gives the
    paper's settings. What each option does and why: ``docs/driftmoe.md``.

    Args:
        n_experts: ``E`` (MoE-Data, default 6) or the maximum number of classes (MoE-Task,
            default 32).
        top_k: MoE-Data: experts whose predictions are combined (``k``).
        train_k: MoE-Data: experts that learn each instance (``K``).
        variant: ``"data"`` or ``"task"``.
        expert: river classifier prototype cloned for each expert; it must accept
            ``learn_one(x, y, w=...)`` when ``bagging_lambda`` is set (default
            :meth:`default_expert`).
        router_hidden: first hidden width of the router MLP (the second is half of it).
        lr: Adam learning rate of the router (``None``: 2e-3 for MoE-Data, 3e-2 for MoE-Task).
        batch_size: instances per router step (``B``).
        warmup: MoE-Data: instances during which every expert learns, and the length of a
            reset expert's re-warm-up.
        temperature: softmax temperature of the routing weights.
        lb_weight: weight of the load-balancing loss in the router's loss (0: a statistic).
        mask_experts: experts measured for the mask besides the ``train_k`` selected ones,
            in rotation (``None``: every expert, as in the paper).
        drift_detector: ``"adwin"`` (ADWIN, delta 0.001, per expert, on its 0/1 errors), any
            river drift detector instance, or ``None`` (no resets, as in the paper).
        bagging_lambda: learning experts learn with a Poisson(``bagging_lambda``) weight
            (``None``: weight 1, as in the paper).
        task_output: MoE-Task: ``"product"`` (router weight x expert probability) or
            ``"router"`` (the router's softmax alone, as in the authors' code).
        n_inputs: width ``d`` of the router's input vector (numeric features and seen
            categories; more share slots by hashing).
        seed: seed of the router initialisation and of the Poisson weights.

    Examples:
        >>> from river import evaluate, metrics
        >>> from moesuite.streaming import make_stream
        >>> model = DriftMoEClassifier(n_experts=4, seed=1)
        >>> stream = make_stream("sea_abrupt", n_samples=2000, seed=1)
        >>> acc = evaluate.progressive_val_score(stream, model, metrics.Accuracy())
        >>> acc.get() > 0.8
        True
        >>> len(model.expert_usage()), sorted(model.router_losses())
        (4, ['aux_loss', 'loss', 'steps', 'task_loss'])
    """

    def __init__(
        self,
        n_experts: int | None = None,
        top_k: int = 3,
        train_k: int = 3,
        variant: str = "data",
        expert: base.Classifier | None = None,
        router_hidden: int = 64,
        lr: float | None = None,
        batch_size: int = 32,
        warmup: int = 500,
        temperature: float = 0.8,
        lb_weight: float = 0.0,
        mask_experts: int | None = 1,
        drift_detector: Any = "adwin",
        bagging_lambda: float | None = 6.0,
        task_output: str = "product",
        n_inputs: int = 64,
        seed: int | None = None,
    ):
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}.")
        if task_output not in _TASK_OUTPUTS:
            raise ValueError(f"task_output must be one of {_TASK_OUTPUTS}, got {task_output!r}.")
        default_experts, default_lr = _VARIANT_DEFAULTS[variant]
        n_experts_ = default_experts if n_experts is None else n_experts
        for name, value, low in (
            ("n_experts", n_experts_, 1),
            ("top_k", top_k, 1),
            ("train_k", train_k, 1),
            ("router_hidden", router_hidden, 2),
            ("batch_size", batch_size, 1),
            ("warmup", warmup, 0),
            ("n_inputs", n_inputs, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
        if variant == "data" and top_k > n_experts_:
            raise ValueError(
                f"top_k={top_k} is larger than n_experts={n_experts_}; use top_k <= n_experts."
            )
        if mask_experts is not None and (not isinstance(mask_experts, int) or mask_experts < 0):
            raise ValueError(
                f"mask_experts must be None (all experts) or an int >= 0, got {mask_experts!r}."
            )
        if bagging_lambda is not None and not bagging_lambda > 0:
            raise ValueError(
                f"bagging_lambda must be None (weight 1) or > 0, got {bagging_lambda!r}."
            )
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        if not lb_weight >= 0:
            raise ValueError(f"lb_weight must be >= 0 (0 disables it), got {lb_weight!r}.")
        self.n_experts = n_experts
        self.top_k = top_k
        self.train_k = train_k
        self.variant = variant
        self.expert = expert
        self.router_hidden = router_hidden
        self.lr = lr
        self.batch_size = batch_size
        self.warmup = warmup
        self.temperature = temperature
        self.lb_weight = lb_weight
        self.mask_experts = mask_experts
        self.drift_detector = drift_detector
        self.bagging_lambda = bagging_lambda
        self.task_output = task_output
        self.n_inputs = n_inputs
        self.seed = seed

        self._prototype = expert if expert is not None else self.default_expert(variant)
        self._vectorizer = FeatureVectorizer(width=n_inputs)
        self._E = n_experts_
        # the core top-k head selects min(top_k, E); train_k may exceed E (then all learn)
        self._router = OnlineRouter(
            n_inputs,
            n_experts_,
            hidden=router_hidden,
            k=min(top_k, n_experts_),
            lr=default_lr if lr is None else lr,
            lb_weight=lb_weight,
            seed=seed,
        )
        self._rng = random.Random(seed)
        self._classes: list = []  # labels in order of first appearance
        n_start = 0 if variant == "task" else n_experts_  # MoE-Task adds one per class
        self._experts: list = [self._prototype.clone() for _ in range(n_start)]
        self._detector = self._resolve_detector(drift_detector)
        self._detectors = (
            [] if self._detector is None else [self._detector.clone() for _ in self._experts]
        )
        self._fresh = [0] * len(self._experts)  # instances left in each expert's (re)warm-up
        self._n = 0
        self._usage = [0] * n_experts_
        self.n_resets_ = 0
        self._rotate = 0
        self._batch_v: list[np.ndarray] = []
        self._batch_m: list[np.ndarray] = []
        self._batch_valid: list[np.ndarray] = []
        self._cache: tuple | None = None

    @staticmethod
    def default_expert(variant: str = "data") -> base.Classifier:
        """The expert prototype used when ``expert=None``.

        ``HoeffdingTreeClassifier(grace_period=200, delta=0.01)``, with majority-class leaves
        (``leaf_prediction="mc"``) for MoE-Task.

        Examples:
            >>> DriftMoEClassifier.default_expert("task").leaf_prediction
            'mc'
        """
        if variant == "task":
            return tree.HoeffdingTreeClassifier(grace_period=200, delta=0.01, leaf_prediction="mc")
        return tree.HoeffdingTreeClassifier(grace_period=200, delta=0.01)

    @staticmethod
    def paper_params(variant: str = "data") -> dict[str, Any]:
        """Constructor arguments that follow the paper and the authors' code.

        Examples:
            >>> DriftMoEClassifier(**DriftMoEClassifier.paper_params()).n_experts
            12
        """
        params: dict[str, Any] = {
            "variant": variant,
            "router_hidden": 256,
            "bagging_lambda": None,
            "drift_detector": None,
            "mask_experts": None,
            "lr": 2e-3,
            "expert": tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-7),
        }
        if variant == "data":
            params.update(n_experts=12, top_k=1, train_k=3, batch_size=256)
        else:
            params.update(task_output="router", batch_size=1)
        return params

    @staticmethod
    def _resolve_detector(spec: Any) -> Any:
        if spec is None:
            return None
        if isinstance(spec, str):
            if spec != "adwin":
                raise ValueError(
                    f"drift_detector must be None, 'adwin' or a river drift detector, got {spec!r}."
                )
            from river import drift

            return drift.ADWIN(delta=0.001)  # ARF's drift (not warning) threshold
        if not hasattr(spec, "update") or not hasattr(spec, "clone"):
            raise TypeError(
                "drift_detector must be None, 'adwin' or a river drift detector, "
                f"got {type(spec).__name__}."
            )
        return spec

    @classmethod
    def _unit_test_params(cls):
        yield {"n_experts": 3, "warmup": 20, "batch_size": 8, "router_hidden": 8, "seed": 1}
        yield {"variant": "task", "n_experts": 8, "batch_size": 8, "router_hidden": 8, "seed": 1}

    @property
    def _multiclass(self) -> bool:
        return True

    # ------------------------------------------------------------------ routing

    def _route(self, x: dict) -> tuple[np.ndarray, np.ndarray, dict[int, dict]]:
        """Feature vector ``[d]``, routing weights ``[E]`` and the expert predictions so far."""
        c = self._cache
        if c is not None and c[0] == x:
            return c[1], c[2], c[3]
        v = self._vectorizer.transform_one(x)
        logits = self._router.logits_one(v)
        z = logits / self.temperature
        if self.variant == "task":
            z = z[: max(len(self._classes), 1)]
        z = np.exp(z - z.max())
        return v, z / z.sum(), {}

    def _expert_proba(self, i: int, x: dict, preds: dict[int, dict]) -> dict:
        p = preds.get(i)
        if p is None:
            p = preds[i] = self._experts[i].predict_proba_one(x)
        return p

    def expert_usage(self) -> list[int]:
        """How many predictions each expert has led (top-1 routing choice), since the start."""
        return list(self._usage)

    def router_losses(self) -> dict[str, float]:
        """Sums over the router's steps of ``loss`` (= ``task_loss + aux_loss``) and its parts.

        ``steps`` is the number of steps; the prequential report divides to log mean losses.
        """
        return {**self._router.loss_sums, "steps": self._router.steps}

    # ------------------------------------------------------------------ predict

    def predict_proba_one(self, x: dict) -> dict:
        if not self._classes:
            return {}
        v, w, preds = self._route(x)
        if self.variant == "task":
            proba = self._task_proba(x, w, preds)
        else:
            order = np.argsort(-w, kind="stable")[: self.top_k]
            proba = dict.fromkeys(self._classes, 0.0)
            total = 0.0
            for i in order:
                wi = float(w[i])
                for label, p in self._expert_proba(int(i), x, preds).items():
                    proba[label] = proba.get(label, 0.0) + wi * p
                total += wi
            s = sum(proba.values())
            if s <= 0:
                proba = dict.fromkeys(self._classes, 1.0)
                s = float(len(proba))
            proba = {label: p / s for label, p in proba.items()}
        self._cache = (dict(x), v, w, preds)
        return proba

    def _task_proba(self, x: dict, w: np.ndarray, preds: dict[int, dict]) -> dict:
        C = len(self._classes)
        if self.task_output == "router":
            scores = [float(w[c]) for c in range(C)]
        else:
            scores = [
                float(w[c]) * self._expert_proba(c, x, preds).get(True, 0.0) for c in range(C)
            ]
        s = sum(scores)
        if s <= 0:
            scores, s = [float(w[c]) for c in range(C)], float(w[:C].sum())
        return {label: sc / s for label, sc in zip(self._classes, scores, strict=True)}

    # ------------------------------------------------------------------ learn

    def learn_one(self, x: dict, y: Any) -> None:
        if y not in self._classes:
            self._add_class(y)
        v, w, preds = self._route(x)
        self._cache = None
        # Hoeffding trees break ties between equally good splits by feature order; a fixed
        # order makes the model independent of how the dict happens to be ordered
        x = _canonical(x)
        E = self._E
        mask = np.zeros(E)
        valid = np.zeros(E)
        if self.variant == "task":
            self._learn_task(x, y, w, preds, mask, valid)
        else:
            self._learn_data(x, y, w, preds, mask, valid)
        self._usage[int(np.argmax(w))] += 1
        self._vectorizer.learn_one(x)
        self._n += 1
        self._batch_v.append(v)
        self._batch_m.append(mask)
        self._batch_valid.append(valid)
        if len(self._batch_v) >= self.batch_size:
            self._router.fit_batch(
                np.stack(self._batch_v), np.stack(self._batch_m), np.stack(self._batch_valid)
            )
            self._batch_v, self._batch_m, self._batch_valid = [], [], []

    def _add_class(self, y: Any) -> None:
        if self.variant == "task":
            if len(self._classes) >= self._E:
                raise ValueError(
                    f"variant='task' has one expert per class and n_experts={self._E}, but label "
                    f"{y!r} is class number {len(self._classes) + 1}; raise n_experts."
                )
            self._experts.append(self._prototype.clone())
            self._fresh.append(0)
            if self._detector is not None:
                self._detectors.append(self._detector.clone())
        self._classes.append(y)

    def _measured(self, w: np.ndarray, selected: list[int]) -> list[int]:
        """Experts whose correctness enters the mask: all, or the selected + a rotating few."""
        E = len(self._experts)
        if self.mask_experts is None or self._n < self.warmup:
            return list(range(E))
        out = list(selected) + [i for i in range(E) if self._fresh[i] > 0 and i not in selected]
        extra = 0
        for _ in range(E):
            if extra >= self.mask_experts:
                break
            self._rotate = (self._rotate + 1) % E
            if self._rotate not in out:
                out.append(self._rotate)
                extra += 1
        return out

    def _learn_data(
        self, x: dict, y: Any, w: np.ndarray, preds: dict, mask: np.ndarray, valid: np.ndarray
    ) -> None:
        selected = [int(i) for i in np.argsort(-w, kind="stable")[: self.train_k]]
        best, best_p = -1, -1.0
        for i in self._measured(w, selected):
            p = self._expert_proba(i, x, preds)
            valid[i] = 1.0
            if p:
                guess = max(p, key=p.get)
                right = guess == y
                py = p.get(y, 0.0)
            else:
                right, py = False, 0.0
            mask[i] = right
            if py > best_p:
                best, best_p = i, py
            if self._detectors and (i in selected or self._fresh[i] > 0):
                self._watch(i, right)  # errors on the instances it was routed (not probes)
        if not mask.any() and best >= 0:
            mask[best] = 1.0
        warm = self._n < self.warmup
        lam = self.bagging_lambda
        for i, expert in enumerate(self._experts):
            if warm:
                self._learn(expert, x, y, self._poisson(lam or 1.0))
            elif self._fresh[i] > 0 or i in selected:
                self._learn(expert, x, y, 1 if lam is None else self._poisson(lam))
            if self._fresh[i] > 0:
                self._fresh[i] -= 1

    def _learn_task(
        self, x: dict, y: Any, w: np.ndarray, preds: dict, mask: np.ndarray, valid: np.ndarray
    ) -> None:
        c_true = self._classes.index(y)
        for c, expert in enumerate(self._experts):
            p_yes = self._expert_proba(c, x, preds).get(True, 0.0)
            valid[c] = 1.0
            says_yes = p_yes > 0.5
            mask[c] = says_yes and c == c_true
            if self._detectors:
                self._watch(c, says_yes == (c == c_true))
            lam = self.bagging_lambda
            self._learn(expert, x, c == c_true, 1 if lam is None else self._poisson(lam))
        if not mask.any():
            mask[c_true] = 1.0

    def _watch(self, i: int, right: bool) -> None:
        det = self._detectors[i]
        before = getattr(det, "estimation", None)
        det.update(0.0 if right else 1.0)
        if det.drift_detected and self._worse(det, before):
            self._experts[i] = self._prototype.clone()
            self._detectors[i] = self._detector.clone()
            self._fresh[i] = self.warmup
            self.n_resets_ += 1

    @staticmethod
    def _worse(det: Any, before: float | None) -> bool:
        """Whether a change the detector flagged is a rise of the expert's error.

        River's ADWIN flags a change in either direction; a freshly reset expert whose error
        falls as it learns must not be reset again (MOA's ADWIN change detector, which ARF
        uses, only reports rises).
        """
        if before is None:  # a detector without an estimate: every change counts
            return True
        return det.estimation > before

    @staticmethod
    def _learn(expert: base.Classifier, x: dict, y: Any, weight: int) -> None:
        if weight == 1:
            expert.learn_one(x, y)
        elif weight > 1:
            expert.learn_one(x, y, w=weight)

    def _poisson(self, lam: float) -> int:
        """A Poisson(lam) draw (Knuth), from the model's own seeded generator."""
        L, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= L:
                return k
            k += 1


MODELS.register(
    "driftmoe-data",
    DriftMoEClassifier,
    help="DriftMoE, MoE-Data: router over 6 Hoeffding trees, top-3 updates",
    variant="data",
)
MODELS.register(
    "driftmoe-data-fast",
    DriftMoEClassifier,
    help="DriftMoE, MoE-Data with top-2 updates (train_k=2): faster, less accurate on LED/RBF",
    variant="data",
    train_k=2,
)


@MODELS.register(
    "driftmoe-paper",
    help="DriftMoE with the paper's and authors' settings (MoE-Data: 12 experts, top-1)",
)
def driftmoe_paper(
    seed: int | None = None, n_experts: int | None = None, variant: str = "data", **params: Any
) -> DriftMoEClassifier:
    """``DriftMoEClassifier(**DriftMoEClassifier.paper_params(variant))`` with ``params`` on top."""
    paper = DriftMoEClassifier.paper_params(variant)
    if n_experts is not None:
        paper["n_experts"] = n_experts
    return DriftMoEClassifier(**{**paper, **params}, seed=seed)


MODELS.register(
    "driftmoe-task",
    DriftMoEClassifier,
    help="DriftMoE, MoE-Task: one-vs-rest Hoeffding tree per class + router",
    variant="task",
)
