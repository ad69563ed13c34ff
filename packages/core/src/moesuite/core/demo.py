"""The core's own demo: a small MoE classifier on scikit-learn's bundled digits.

Two routers (top-k and Sinkhorn) against a dense network with the same number of *active*
parameters per token, trained with the shared trainer plumbing; reports test accuracy, expert
load and wall time. Runs offline in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from moesuite.core import routers
from moesuite.core.experts import GroupedExperts
from moesuite.core.layer import MoELayer
from moesuite.core.output import MoEOutput
from moesuite.core.stats import load_imbalance, plot_expert_load
from moesuite.core.training import MoESystem, OptimConfig, fit, make_trainer

__all__ = ["DigitsClassifier", "run_core_demo"]


class DigitsClassifier(nn.Module):
    """``Linear -> (MoE | dense FFN) block with residual + LayerNorm -> Linear`` over 8x8 digits.

    Args:
        router: router name, or ``None`` for the dense model whose FFN has ``k * d_hidden``
            hidden units (the same active parameters per token as the MoE).
        d_model: embedding width.
        d_hidden: hidden width of each expert.
        num_experts: ``E``.
        k: experts per token.
    """

    def __init__(
        self,
        router: str | None,
        d_model: int = 32,
        d_hidden: int = 32,
        num_experts: int = 8,
        k: int = 2,
    ):
        super().__init__()
        self.embed = nn.Linear(64, d_model)
        self.norm = nn.LayerNorm(d_model)
        if router is None:
            self.ffn: nn.Module = nn.Sequential(
                nn.Linear(d_model, k * d_hidden, bias=False),
                nn.GELU(),
                nn.Linear(k * d_hidden, d_model, bias=False),
            )
        else:
            self.ffn = MoELayer(
                routers.create(router, d_model=d_model, num_experts=num_experts, k=k),
                GroupedExperts(num_experts, d_model, d_hidden),
            )
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> MoEOutput[torch.Tensor]:
        """``x[B, 64] -> logits[B, 10]``, with the router's output (none for the dense model)."""
        h = torch.relu(self.embed(x))
        routing = []
        if isinstance(self.ffn, MoELayer):
            f, r = self.ffn(self.norm(h))
            routing.append(r)
        else:
            f = self.ffn(self.norm(h))
        return MoEOutput(self.head(h + f), routing)


def _step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
    x, y = batch
    out = model(x)
    task = nn.functional.cross_entropy(out.output, y)
    return {
        "loss": task + out.aux_loss,
        "task_loss": task,
        "aux_loss": out.aux_loss,
        "acc": (out.output.argmax(-1) == y).float().mean(),
    }


def run_core_demo(
    out_dir: str | Path | None = None, epochs: int = 60, seed: int = 0, progress: bool = False
) -> list[dict]:
    """Train the three digits models and return one table row per model.

    Args:
        out_dir: where to write ``plots/expert_load_<router>.png`` (nothing written if ``None``).
        epochs: training epochs for every model (same budget).
        seed: seed for the split, initialisation and batching.
        progress: show Lightning's progress bar.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from torch.utils.data import DataLoader, TensorDataset

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    mean, std = X_tr.mean(0), X_tr.std(0) + 1e-6
    to_t = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    x_tr, x_te = to_t(X_tr), to_t(X_te)
    t_tr, t_te = torch.tensor(y_tr), torch.tensor(y_te)

    rows = []
    for router in ("topk", "sinkhorn", None):
        torch.manual_seed(seed)
        model = DigitsClassifier(router)
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            TensorDataset(x_tr, t_tr), batch_size=64, shuffle=True, generator=generator
        )
        trainer = make_trainer(
            None, max_epochs=epochs, seed=seed, progress=progress, monitor="train/loss_epoch"
        )
        start = time.perf_counter()
        fit(trainer, MoESystem(model, _step, OptimConfig(lr=3e-3), max_epochs=epochs), loader)
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            out = model(x_te)
        acc = float((out.output.argmax(-1) == t_te).float().mean())
        name = f"moe-{router}" if router else "dense"
        note = "same active params as the MoE"
        if out.routing:
            counts = out.routing[0].plan.counts
            note = f"E=8 k=2, test load max/mean {load_imbalance(counts):.2f}"
            if out_dir is not None:
                plot_expert_load(
                    {name: counts},
                    Path(out_dir) / "plots" / f"expert_load_{name}.png",
                    title=f"digits, {name}: test-set expert load",
                )
        n_params = sum(p.numel() for p in model.parameters())
        rows.append(
            {
                "domain": "core",
                "task": "digits (sklearn) classification",
                "model": name,
                "metric": "test accuracy",
                "value": round(acc, 4),
                "seconds": round(seconds, 1),
                "params": n_params,
                "note": note,
            }
        )
    return rows
