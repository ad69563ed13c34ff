"""MoFME benchmark: dense, conventional MoE and MoFME restorers on Kodak24 under synthetic weather.

One invocation trains and tests, at one budget (same steps, batch, crops, learning rate and
schedule for every model; the best checkpoint chosen on validation crops only):

- ``dense-restorer`` (dense FFN with the active FLOPs of the default MoFME block);
- ``moe-restorer`` (conventional MoE: n FFN experts, top-2) at n in {4, 8, 16};
- ``mofme`` with vector and linear FiLM experts, with and without the uncertainty-aware
  router, at n in {4, 8, 16};

each with 3 seeds, trained on CBSD68 + McMaster crops under rain, haze and snow and tested on
Kodak24 under each weather (synthesised once, cached outside the repository). Then, in the
same invocation, CPU inference time of every variant (median of interleaved rounds, 2 threads;
plus top-4 routing and the authors' dense evaluation of every expert, for reference).

Rows go to ``results/mofme.jsonl`` as they finish (run id and commit on every row); an
interrupted invocation is resumed by running the same command again (finished rows are kept
and skipped; a trained but untested run is tested from its checkpoint); ``--fresh`` starts a
new run id; ``--resume RUN_ID`` reopens a finished run (e.g. to add ``--experts``: its finished
rows are kept, and the timing is redone over every variant if it lacks one, retraining a
seed-0 model whose run directory is gone). The table (``results/mofme.md``) uses the rows of
one run id only.

    nohup nice -n 10 .venv/bin/python benchmarks/vision/bench_mofme.py > runs/bench_mofme.log 2>&1 &
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from moesuite.core.routers import Router, RouterOutput
from moesuite.core.routing import RoutingPlan
from moesuite.core.training import torch_threads
from moesuite.vision.data.paths import shared_path
from moesuite.vision.data.restoration import TEST_SET, weather_test_set
from moesuite.vision.mofme.compare import Variant, markdown_table, run_variant, strip, summarise
from moesuite.vision.mofme.evaluate import time_inference
from moesuite.vision.mofme.model import Restorer
from moesuite.vision.mofme.training import TrainConfig, load_run, train_restorer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
JSONL = RESULTS / "mofme.jsonl"
REPORT = [RESULTS / "mofme.md"]  # the table's path (set in main)


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def read_rows() -> list[dict]:
    if not JSONL.is_file():
        return []
    return [json.loads(line) for line in JSONL.read_text().splitlines() if line.strip()]


def append(row: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(JSONL, "a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")


def variants(experts: list[int], ablation: bool = False) -> list[Variant]:
    if ablation:  # the authors' output head (sigmoid, no image residual) against ours
        base = {"experts": experts[0], "modulation": "vector", "uar": True}
        return [Variant("mofme", base), Variant("mofme", base | {"output": "sigmoid"})]
    out = [Variant("dense-restorer")]
    out += [Variant("moe-restorer", {"experts": n}) for n in experts]
    for n in experts:
        for mod in ("vector", "linear"):
            for uar in (True, False):
                out.append(Variant("mofme", {"experts": n, "modulation": mod, "uar": uar}))
    return out


class AllExpertsRouter(Router):
    """Timing only: every token visits every expert, unselected gates 0 (the authors' code
    evaluates all experts and masks the gates)."""

    def __init__(self, inner: Router):
        super().__init__(inner.d_model, inner.num_experts, inner.k)
        self.inner = inner

    def route(self, x: torch.Tensor, state) -> RouterOutput:
        out = self.inner(x)
        dense = out.plan.to_dense()
        T, E = dense.shape
        idx = torch.arange(E, device=x.device).expand(T, E)
        plan = RoutingPlan.from_topk(idx, dense, E)
        return RouterOutput(plan, out.logits, out.probs, out.aux, state, out.aux_weights)


def dense_dispatch(model: Restorer) -> Restorer:
    for ffn in model.ffn_modules():
        moe = getattr(ffn, "moe", None)
        if moe is not None:
            moe.router = AllExpertsRouter(moe.router)
    return model


def timing(run_dirs: dict[str, Path], crop: int, rounds: int, threads: int) -> dict:
    models = {}
    for label, path in run_dirs.items():
        model, config = load_run(path)
        models[f"{label}|sparse|k2"] = model
        if model.block != "dense":
            cfg = dict(config["restorer"])
            models[f"{label}|dense-dispatch|k2"] = dense_dispatch(load_run(path)[0])
            cfg["top_k"] = min(4, model.experts)
            models[f"{label}|sparse|k4"] = Restorer(**cfg).eval()
    return time_inference(models, tile=crop, rounds=rounds, threads=threads)


def targets(summary: list[dict], times: dict[str, dict], experts: list[int], best: str) -> str:
    by = {e["label"]: e for e in summary}
    dense = by.get("dense-restorer")
    lines = [
        f"Target check (MoFME = `mofme-{best}-uar`; CPU time: sparse top-2 dispatch, 2 threads):",
        "",
        "| n | MoFME - MoE PSNR (dB) | MoE-block params (MoFME / MoE) | CPU time saved vs MoE "
        "| MoFME - dense PSNR (dB) | FLOPs/px MoFME / dense |",
        "|---|---|---|---|---|---|",
    ]
    for n in experts:
        f, m = by.get(f"mofme-{best}-uar-n{n}"), by.get(f"moe-restorer-n{n}")
        if f is None or m is None:
            continue
        tf = times.get(f"mofme-{best}-uar-n{n}|sparse|k2", {}).get("median_s")
        tm = times.get(f"moe-restorer-n{n}|sparse|k2", {}).get("median_s")
        saved = f"{100 * (1 - tf / tm):.0f}%" if tf and tm else "-"
        ratio = f["parameters"]["moe_blocks"] / m["parameters"]["moe_blocks"]
        dd = f"{f['psnr_mean'] - dense['psnr_mean']:+.2f}" if dense else "-"
        fl = f"{f['flops_per_pixel'] / dense['flops_per_pixel']:.2f}" if dense else "-"
        lines.append(
            f"| {n} | {f['psnr_mean'] - m['psnr_mean']:+.2f} | {100 * ratio:.0f}% | {saved} "
            f"| {dd} | {fl} |"
        )
    return "\n".join(lines) + "\n"


def timing_table(times: dict[str, dict]) -> str:
    labels = sorted({k.split("|")[0] for k in times})
    cols = ["sparse|k2", "sparse|k4", "dense-dispatch|k2"]
    lines = [
        "| model | top-2 (ms) | top-4 (ms) | all experts evaluated, top-2 gates (ms) |",
        "|---|---|---|---|",
    ]
    for label in labels:
        cells = []
        for c in cols:
            t = times.get(f"{label}|{c}")
            cells.append("-" if t is None else f"{1e3 * t['median_s']:.0f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(rows: list[dict], run_id: str, budget: TrainConfig, experts, args) -> None:
    results = [r for r in rows if r.get("run_id") == run_id and r.get("kind") == "result"]
    if not results:
        return
    summary = summarise(results)
    trows = [r for r in rows if r.get("run_id") == run_id and r.get("kind") == "timing"]
    trow = trows[-1] if trows else None  # the latest timing covers every variant
    times = trow["times"] if trow else {}
    short = {k.split("|")[0]: v for k, v in times.items() if k.endswith("|sparse|k2")}
    order = [v.label for v in variants(experts)] + [v.label for v in variants(experts, True)]
    summary.sort(key=lambda e: order.index(e["label"]) if e["label"] in order else 99)
    mean_by = {
        mod: sum(e["psnr_mean"] for e in summary if e["label"].startswith(f"mofme-{mod}-uar"))
        for mod in ("vector", "linear")
    }
    best = max(mean_by, key=mean_by.get)
    commits = sorted({r["commit"] for r in results})
    text = [
        f"# MoFME benchmark (run `{run_id}`, commit {', '.join(commits)})",
        "",
        f"Budget, equal for every model: {budget.steps} steps of {budget.batch_size} crops of "
        f"{budget.crop}x{budget.crop} (CBSD68 + McMaster, rain/haze/snow synthesised on the "
        f"fly), AdamW lr {budget.lr}, cosine; best checkpoint on validation crops. Test: "
        f"Kodak24 x {{rain, haze, snow}} (72 images, 500x500), tiled inference ({budget.crop}px "
        f"tiles). PSNR/SSIM: scikit-image, data range 1; mean ± std over seeds. CPU time: "
        f"16 tiles of {budget.crop}px per forward, median of {args.rounds} interleaved rounds, "
        f"{args.timing_threads} threads, on a shared 2-core machine.",
        "",
        markdown_table(summary, short),
        targets(summary, times, experts, best),
        "CPU inference time per 16 tiles (one invocation, interleaved): top-2 (the trained "
        "models), top-4 routing of the same architecture, and the authors' evaluation of every "
        "expert with masked gates:",
        "",
        timing_table(times) if times else "(timing not finished)\n",
    ]
    REPORT[0].write_text("\n".join(text))


def timing_and_strip(run_id, code, todo, run_root, test, args, budget) -> None:
    """CPU time of every variant's seed-0 model (one interleaved call) and the image strip."""
    rows = read_rows()
    timed = [r for r in rows if r.get("run_id") == run_id and r.get("kind") == "timing"]
    if timed and all(f"{v.label}|sparse|k2" in timed[-1]["times"] for v in todo):
        return
    firsts = {v.label: run_root / f"{v.label}-s0" for v in todo}
    retrained = {}
    for v in todo:  # a reopened run: seed-0 models whose run directory is gone are retrained
        if (firsts[v.label] / "checkpoints" / "model.pt").is_file():
            continue
        cfg = replace(budget, model=v.model, seed=0, model_options=dict(v.options))
        with torch_threads(args.threads):
            metrics = train_restorer(cfg, out=firsts[v.label], device="cpu", quiet=True).metrics
        old = next(
            (r for r in rows if r.get("run_id") == run_id and r.get("kind") == "result"
             and r["label"] == v.label and r["seed"] == 0),
            {},
        )
        retrained[v.label] = {
            "val_psnr_mean": metrics.get("val_psnr_mean"),
            "recorded_val_psnr_mean": old.get("val_psnr_mean"),
        }
        print(f"retrained {v.label} seed 0 for timing: {retrained[v.label]}", flush=True)
    times = timing(firsts, args.crop, args.rounds, args.timing_threads)
    row = {"run_id": run_id, "commit": code, "kind": "timing", "times": times}
    if retrained:
        row["retrained_seed0"] = retrained
    append(row)
    shown = ("dense-restorer", "moe-restorer-n8", "mofme-vector-uar-n8", "mofme-vector-plain-n8")
    if not args.ablation:
        dirs = {k: firsts[k] for k in shown if k in firsts}
        strip(RESULTS / "mofme_strip.png", dirs, test, args.crop, image=4)


def main() -> None:
    global RESULTS, JSONL
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experts", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop", type=int, default=48)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads for training and test")
    p.add_argument("--timing-threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench" / "mofme")
    p.add_argument("--fresh", action="store_true", help="start a new run id")
    p.add_argument("--resume", default=None, help="reopen this run id (even if finished)")
    p.add_argument("--only", nargs="*", default=None, help="labels to run (default: all)")
    p.add_argument("--results", type=Path, default=RESULTS, help="where the rows and table go")
    p.add_argument("--test-images", type=int, default=None, help="smoke tests: first N only")
    p.add_argument(
        "--ablation",
        action="store_true",
        help="output-head ablation at the first --experts (results/mofme_ablation.*)",
    )
    args = p.parse_args()
    name = "mofme_ablation" if args.ablation else "mofme"
    RESULTS, JSONL = args.results, args.results / f"{name}.jsonl"
    REPORT[0] = args.results / f"{name}.md"

    code = commit()  # the code this process runs (rows record it, not a later HEAD)
    rows = read_rows()
    done_ids = {r["run_id"] for r in rows if r.get("kind") == "done"}
    started = [r["run_id"] for r in rows if r.get("kind") == "start"]
    if args.resume and not args.fresh:
        if args.resume not in started:
            sys.exit(f"error: no run {args.resume} in {JSONL}")
        run_id = args.resume
        print(f"reopening run {run_id}", flush=True)
        append({"run_id": run_id, "commit": code, "kind": "resume", "args": vars(args)})
    elif started and started[-1] not in done_ids and not args.fresh:
        run_id = started[-1]
        print(f"resuming run {run_id}", flush=True)
    else:
        run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        append({"run_id": run_id, "commit": code, "kind": "start", "args": vars(args)})
    budget = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        crop=args.crop,
        steps_per_epoch=25,
        lr=args.lr,
        threads=args.threads,
    )
    test = weather_test_set(shared_path("images", TEST_SET))
    if args.test_images:
        n = args.test_images
        test.names, test.clean = test.names[:n], test.clean[:n]
        test.degraded = {w: d[:n] for w, d in test.degraded.items()}
    print(f"test set: {test.path} ({len(test.names)} images x {test.weathers})", flush=True)
    todo = [
        v
        for v in variants(args.experts, args.ablation)
        if args.only is None or v.label in args.only
    ]
    run_root = args.runs / run_id
    for seed in range(args.seeds):
        for v in todo:
            done = {
                (r["label"], r["seed"])
                for r in read_rows()
                if r.get("run_id") == run_id and r.get("kind") == "result"
            }
            if (v.label, seed) in done:
                continue
            start = time.perf_counter()
            cpu = time.process_time()
            with torch_threads(args.threads):
                row = run_variant(v, seed, replace(budget), test, run_root / f"{v.label}-s{seed}")
            row.update({"run_id": run_id, "commit": code, "kind": "result"})
            row["cpu_seconds"] = round(time.process_time() - cpu, 1)
            append(row)
            print(
                f"{v.label} seed {seed}: PSNR {row['psnr_mean']:.2f} "
                f"({', '.join(f'{w} {x:.2f}' for w, x in row['psnr'].items())}), "
                f"{time.perf_counter() - start:.0f} s ({row['cpu_seconds']:.0f} s CPU)",
                flush=True,
            )
            write_report(read_rows(), run_id, budget, args.experts, args)
        if seed == 0:  # the seed-0 models of every variant exist: time them now
            timing_and_strip(run_id, code, todo, run_root, test, args, budget)
    write_report(read_rows(), run_id, budget, args.experts, args)
    append({"run_id": run_id, "commit": code, "kind": "done"})
    print(REPORT[0].read_text())


if __name__ == "__main__":
    sys.exit(main())
