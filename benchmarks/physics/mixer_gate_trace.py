"""MixER only, no adaptation: the gate's family ARI along training, for exploring gate options.

Prints one JSON line: final routing ARI, in-domain MSE (held-out initial conditions), the ARI of
the gate update's target and of its K-means clusters every 40 gate updates, the experts each
family ended on, and the merges done. Example (the rows of docs/mixer.md, "What was tried" 5)::

    nice -n 10 .venv/bin/python benchmarks/physics/mixer_gate_trace.py --epochs 20 \\
        --gate '{"reassign": true, "relocate": true}' --train '{"merge_ratio": 1.5}'
"""

from __future__ import annotations

import argparse
import json

import torch

from moesuite.physics.mixer.api import default_num_experts, prepare_data, train_model
from moesuite.physics.mixer.evaluate import adjusted_rand_index, predict
from moesuite.physics.mixer.gate import GateUpdateConfig
from moesuite.physics.mixer.training import MixERSystem, TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="all")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gate", default="{}", help="JSON of GateUpdateConfig fields")
    parser.add_argument("--train", default="{}", help="JSON of other TrainConfig fields (warmup, split_warmup, ...)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset, _ = prepare_data(args.families, None, args.seed, n_train_envs=8, n_train_ics=8)
    family = dataset.train.family
    trace: list[tuple[int, float, float]] = []
    update = MixERSystem.update_gate

    def traced(self, batch):  # the same update, recording its ARIs every 40 updates
        result = update(self, batch)
        if result is not None and self.gate_updates % 40 == 0:
            trace.append((self._outer, round(adjusted_rand_index(family, result.target.numpy()), 3),
                          round(adjusted_rand_index(family, result.clusters.numpy()), 3)))
        return result

    MixERSystem.update_gate = traced
    tc = TrainConfig(epochs=args.epochs, seed=args.seed, gate_update=GateUpdateConfig(**json.loads(args.gate)),
                     **json.loads(args.train))
    net, system, seconds = train_model("mixer", dataset, num_experts=default_num_experts(len(dataset.families)),
                                       train_config=tc)
    experts = net.assignments()
    _, test_mse = predict(net, dataset.train, "test")
    print(json.dumps({
        "seed": args.seed, "epochs": args.epochs, "gate": json.loads(args.gate), "train": json.loads(args.train),
        "ari": round(adjusted_rand_index(family, experts.numpy()), 3), "mse_in_domain": round(float(test_mse.mean()), 4),
        "train_seconds": round(seconds), "trace_outer_target_clusters": trace, "merges": system.merges,
        "experts_per_family": {name: sorted(set(experts[torch.as_tensor(family) == i].tolist()))
                               for i, name in enumerate(dataset.families)},
    }), flush=True)


if __name__ == "__main__":
    main()
