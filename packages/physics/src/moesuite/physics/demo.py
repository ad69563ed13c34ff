"""``moesuite demo`` rows of the physics domain: EvidenceMoE vs a dense network, MixER vs its baselines."""

from __future__ import annotations

from pathlib import Path

from moesuite.core.training import torch_threads

__all__ = ["run_demo"]


def run_demo(out_dir: Path) -> list[dict]:
    """EvidenceMoE vs the dense baseline on a small simulated FLiDAR set, then the quick MixER demo.

    Rows have keys ``domain, task, model, metric, value, seconds, note``; plots go to
    ``out_dir/plots``. About a minute on 2 CPU cores.
    """
    from moesuite.physics.evidence.api import demo_rows as evidence_rows
    from moesuite.physics.mixer.api import demo_rows as mixer_rows

    out_dir = Path(out_dir)
    with torch_threads(1):
        rows = evidence_rows(out_dir)
        rows += [dict(r, note=r.get("note", "")) for r in mixer_rows(out_dir)]
    return rows
