"""What MoHETS's encoder is worth to its forecast: test MSE with the learned gate vs a uniform one.

The default MoHETS head mixes linear lookback experts with gates that a core router computes
from the encoder's tokens. Replacing those gates by ``1/E`` for every sequence keeps the
experts and removes everything the encoder contributes; the gap between the two test MSEs
is what the encoder is worth to the forecast. Also prints the mean gate per expert, the mean
largest gate and the gates' entropy (normalised by ``log E``).

    python benchmarks/timeseries/gate_ablation.py runs/bench/timeseries/<run>/L336-seed0/mohets-*
"""

from __future__ import annotations

import argparse
import math

import torch

from moesuite.timeseries.config import build_datamodule, load_run, load_table


def test_mse(model: torch.nn.Module, loader: torch.utils.data.DataLoader) -> float:
    se, n = 0.0, 0
    with torch.no_grad():
        for b in loader:
            y = model.predict(b["x"], b["z_past"], b["z_future"])
            se += float(((y - b["y"]) ** 2).sum())
            n += b["y"].numel()
    return se / n


class UniformGate(torch.nn.Module):
    """Stands in for the router: ``forward(x).plan.to_dense()`` is ``1/E`` everywhere."""

    def __init__(self, num_experts: int):
        super().__init__()
        self.num_experts = num_experts

    def forward(self, x: torch.Tensor) -> UniformGate:
        self._rows = x.shape[0]
        return self

    @property
    def plan(self) -> UniformGate:
        return self

    def to_dense(self) -> torch.Tensor:
        return torch.full((self._rows, self.num_experts), 1.0 / self.num_experts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="MoHETS run directories (gated lookback experts)")
    args = p.parse_args()
    for run in args.runs:
        cfg, _, model = load_run(run)
        if getattr(model, "gate", None) is None:
            raise SystemExit(f"error: {run}: not a MoHETS run with gated lookback experts")
        test = build_datamodule(cfg, load_table(cfg)).dataset("test")
        loader = torch.utils.data.DataLoader(test, batch_size=256)
        gates: list[torch.Tensor] = []
        hook = model.gate.register_forward_hook(
            lambda m, i, o, gates=gates: gates.append(o.plan.to_dense())
        )
        learned = test_mse(model, loader)
        hook.remove()
        router, E = model.gate, model.lookback_head.n_experts
        model.gate = UniformGate(E)
        uniform = test_mse(model, loader)
        model.gate = router
        g = torch.cat(gates)
        entropy = float(-(g.clamp_min(1e-12).log() * g).sum(1).mean()) / math.log(E)
        mean_gate = [round(v, 3) for v in g.mean(0).tolist()]
        print(
            f"{run}: H={cfg.horizon} test MSE {learned:.4f}, uniform gate {uniform:.4f}; mean gate "
            f"{mean_gate}, mean max {float(g.max(1).values.mean()):.3f}, entropy {entropy:.3f}"
        )


if __name__ == "__main__":
    main()
