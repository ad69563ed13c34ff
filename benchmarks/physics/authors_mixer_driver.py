"""Run the MixER authors' own code (a user's checkout of their repository) on exported data.

Runs in a Python environment with the authors' dependencies (JAX, Equinox, Diffrax, Optax; see
``bench_mixer.py --authors-python``), never in the project's: ``bench_mixer.py`` exports a
dataset in the authors' layout (``train.npz``, ``test.npz``, ``adapt_train.npz``,
``adapt_test.npz``: ``X [families, envs, trajectories, T, D]``, ``t [families, T]``), starts
this script, and scores what it writes (``predictions.npz``) in our units.

The model and its training are the authors' ``examples/ode-bench/main_mixer.py`` settings
(GEPS experts of width 64 and depth 3, context 4 per expert split across the experts, top-1
gate refitted by K-means + least squares after every inner step, 12 + 12 proximal inner steps
of weight 10, AdaBelief at 1e-3 with x0.4 decay at 1/3 and 2/3, nearest-environment loss
contributors, sub-trajectories of at least 60% in training, Tsit5 with rtol 1e-3), with
``--outer-steps`` outer steps instead of their 1,500 and ``--adapt-steps`` context steps for
adaptation instead of their 1,500. Nothing of their code is copied here: it is imported from
``--repo``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


class _GateCounter:
    """Pass the authors' prints through and count their gate refits: a K-means that converged
    (the least-squares gate is refitted) or an abort ("cluster empty" / "did not converge": the
    update is skipped and the gate keeps its weights)."""

    def __init__(self, stream: object) -> None:
        self.stream, self.updates, self.aborts = stream, 0, 0

    def write(self, text: str) -> int:
        self.updates += text.count("Gating k-means converged")
        self.aborts += text.count("is empty. Skipping gating") + text.count("did not converge")
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="checkout of ddrous/MixER")
    parser.add_argument("--data", type=Path, required=True, help="folder of the exported .npz")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--outer-steps", type=int, required=True)
    parser.add_argument("--adapt-steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(args.repo.resolve()))
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import torch

    if not hasattr(jax, "tree_map"):  # removed in JAX 0.6; their code predates that
        jax.tree_map = jax.tree_util.tree_map
    from mixer import (  # the authors' package
        ArrayContextParams,
        Learner,
        MixER,
        NCFTrainer,
        NeuralODE,
        NumpyLoader,
        ODEBenchDataset,
    )

    meta = json.loads((args.data / "meta.json").read_text())
    n_fam, envs_per_fam, n_adapt_per_fam = meta["families"], meta["envs"], meta["adapt_envs"]
    data_size = meta["state_dim"]
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    key = jax.random.PRNGKey(args.seed)
    _data_key, model_key, trainer_key, _test_key = jax.random.split(key, num=4)

    nb_experts = n_fam  # the authors' script: one expert per family
    context_size = 4 * nb_experts
    n_envs, n_adapt = envs_per_fam * n_fam, n_adapt_per_fam * n_fam
    ivp_args = {
        "return_traj": True,
        "max_steps": 256 * 16,
        "integrator": diffrax.Tsit5(),
        "rtol": 1e-3,
        "atol": 1e-6,
        "clip_sol": None,
        "adjoint": diffrax.RecursiveCheckpointAdjoint(),
    }

    def loader(split: str, prop: float, adaptation: bool, batch: int) -> object:
        ds = ODEBenchDataset(
            data_dir=str(args.data / f"{split}.npz"),
            norm_consts=None,
            num_shots=-1,
            skip_steps=1,  # the export holds the 20 observations their skip_steps=5 reads
            adaptation=adaptation,
            traj_prop_min=prop,
        )
        return NumpyLoader(ds, batch_size=batch, shuffle=False, num_workers=0, drop_last=False)

    train_loader = loader("train", 0.6, False, n_envs)
    test_loader = loader("test", 1.0, False, n_envs)

    def env_loss_fn(model, ctx, y_hat, y):
        term1 = jnp.mean((y_hat - y) ** 2)
        return term1, (term1, 0.0, 0.0)

    contexts = ArrayContextParams(nb_envs=n_envs, context_size=context_size, key=None)
    neuralnet = MixER(
        key=model_key,
        nb_experts=nb_experts,
        meta_learner="GEPS",
        split_context=True,
        same_expert_init=True,
        use_gate_bias=True,
        gate_update_strategy="least_squares",
        data_size=data_size,
        width=64,
        depth=3,
        context_size=context_size,
        activation="swish",
        shift_context=True,
    )
    model = NeuralODE(neuralnet=neuralnet, taylor_order=0, ivp_args=ivp_args, t_eval=None)
    learner = Learner(
        model=model,
        context_size=contexts.eff_context_size,
        context_pool_size=1,
        env_loss_fn=env_loss_fn,
        contexts=contexts,
        reuse_contexts=True,
        loss_contributors=envs_per_fam,
        pool_filling="NF",
        loss_filling="NF",
        self_reweighting=False,
        key=model_key,
    )
    total = args.outer_steps * 12
    bounds = {total // 3: 0.4, 2 * total // 3: 0.4}
    opt_model = optax.adabelief(optax.piecewise_constant_schedule(1e-3, bounds))
    opt_ctx = optax.adabelief(1e-3)
    trainer = NCFTrainer(learner, (opt_model, opt_ctx), key=trainer_key)

    run_folder = str(args.out.resolve()) + "/"
    counter = _GateCounter(sys.stdout)
    sys.stdout = counter
    start = time.perf_counter()
    trainer.meta_train_gated(
        dataloader=train_loader,
        nb_epochs=1,
        nb_outer_steps=args.outer_steps,
        nb_inner_steps=(12, 12),
        proximal_betas=(10.0, 10.0),
        max_train_batches=1,
        print_error_every=(1, 1),
        save_checkpoints=False,
        validate_every=10,
        save_path=run_folder,
        val_nb_steps=args.adapt_steps,
        val_criterion_id=0,
        max_val_batches=1,
        update_gate_every=1,
        same_expert_optstate=False,
        verbose=False,
        key=trainer_key,
    )
    train_seconds = time.perf_counter() - start
    sys.stdout = counter.stream

    net = learner.model.vectorfield.neuralnet
    gate = eqx.filter_vmap(net.gating_function)
    ctx = learner.contexts
    batch = next(iter(test_loader))
    _, _, pred_test = learner.batch_predict(learner.model, ctx, batch, max_envs=-1)
    experts = np.asarray(jnp.argmax(gate(ctx.params), axis=-1))

    start = time.perf_counter()
    adapt_loader = loader("adapt_train", 1.0, True, n_adapt)
    adapt_test_loader = loader("adapt_test", 1.0, True, n_adapt)
    _, ctx_adapt, (_, _, pred_adapt) = trainer.meta_test(
        adapt_loader,
        nb_steps=args.adapt_steps,
        taylor_order=0,
        print_error_every=(10, 10),
        val_dataloader=adapt_test_loader,
        max_ret_env_states=n_adapt,
        max_adapt_batches=1,
        stochastic=False,
        verbose=False,
    )
    adapt_seconds = time.perf_counter() - start
    experts_adapt = np.asarray(jnp.argmax(gate(ctx_adapt.params), axis=-1))
    np.savez(
        args.out / "predictions.npz",
        pred_test=np.asarray(pred_test),
        pred_adapt=np.asarray(pred_adapt),
        experts=experts,
        experts_adapt=experts_adapt,
        contexts=np.asarray(ctx.params),
    )
    record = {
        "outer_steps": args.outer_steps,
        "adapt_steps": args.adapt_steps,
        "train_seconds": round(train_seconds, 1),
        "adapt_seconds": round(adapt_seconds, 1),
        "params": int(
            sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))
        ),
        "jax": jax.__version__,
        "gate_updates": counter.updates,
        "gate_aborts": counter.aborts,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    (args.out / "done.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
