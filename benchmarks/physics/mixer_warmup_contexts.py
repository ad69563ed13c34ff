"""How well do the contexts at the end of MixER's tied warm-up separate the families?

Trains the tied warm-up only (every environment on expert 0), then clusters its contexts with
K-means under several preprocessings (and, for reference only, Ward and spectral clustering)
and prints the ARI of each against the true families (docs/mixer.md, "What was tried" 5)::

    nice -n 10 .venv/bin/python benchmarks/physics/mixer_warmup_contexts.py --seed 0
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from sklearn.cluster import AgglomerativeClustering, SpectralClustering

from moesuite.physics.mixer.api import default_num_experts, prepare_data, train_model
from moesuite.physics.mixer.evaluate import adjusted_rand_index
from moesuite.physics.mixer.gate import kmeans
from moesuite.physics.mixer.training import MixERSystem, TrainConfig


class _WarmupDone(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="all")
    parser.add_argument("--epochs", type=int, default=20, help="run length the warm-up fraction refers to")
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset, _ = prepare_data(args.families, None, args.seed, n_train_envs=8, n_train_ics=8)
    saved: dict[str, torch.Tensor] = {}

    def stop_at_untie(self, opt):
        saved["contexts"] = self.model.contexts.detach().double().clone()
        raise _WarmupDone

    MixERSystem._untie = stop_at_untie
    try:
        train_model("mixer", dataset, num_experts=default_num_experts(len(dataset.families)),
                    train_config=TrainConfig(epochs=args.epochs, seed=args.seed, warmup=args.warmup))
    except _WarmupDone:
        pass
    x, family, K = saved["contexts"], np.asarray(dataset.train.family), len(dataset.families)
    g = torch.Generator().manual_seed(0)

    def km(z: torch.Tensor, metric: str = "l2") -> float:  # mean over 3 draws of 20 seedings each
        return round(float(np.mean([adjusted_rand_index(family, kmeans(z, K, restarts=20, metric=metric, generator=g)[0])
                                    for _ in range(3)])), 3)

    centred = x - x.mean(0)
    U, S, _ = torch.linalg.svd(centred, full_matrices=False)
    out = {
        "seed": args.seed, "kmeans_raw": km(x), "kmeans_l1": km(x, "l1"), "kmeans_standardised": km(centred / x.std(0)),
        "kmeans_unit_norm": km(centred / centred.norm(dim=1, keepdim=True)), "kmeans_whitened": km(U * len(x) ** 0.5),
        **{f"kmeans_pca{n}": km(U[:, :n] * S[:n]) for n in (3, 5, 8)},
        "ward": round(adjusted_rand_index(family, AgglomerativeClustering(K).fit_predict(x.numpy())), 3),
        "spectral": round(adjusted_rand_index(family, SpectralClustering(
            K, affinity="nearest_neighbors", n_neighbors=6, random_state=0).fit_predict(x.numpy())), 3),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
