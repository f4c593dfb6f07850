"""The comparison table of paper 000 on prefrl's built-in tasks: which preference model is best?

Methods, each trained from the same model on the same pairs for the same number of steps (a step
is one batch of `--batch-size` pairs; DWRL's step is a scoring update plus a thought update):

    BT                       prefrl train reward
    DWRL                     prefrl train dwrl
    DWRL, no misalignment w  prefrl train dwrl use_misalignment_weight=false
    BT on pre-filled thoughts prefrl train dwrl thoughts=fixed
    BT, no thoughts          prefrl train dwrl thoughts=none   (the dialog's Yes-probability)
    pairwise judge           prefrl train pairwise-rm
    GRPO (pair)              prefrl train gpm-grpo

Each is evaluated on the task's held-out split: accuracy with a 95% interval, Brier score and ECE
of P(chosen ≻ rejected). The paper's claim to test: DWRL ≥ BT > GRPO (pair), and removing the
misalignment weight hurts.

    python benchmarks/preference_table.py                       # SmolLM2, both tasks, 2 seeds (hours on 2 CPU cores)
    python benchmarks/preference_table.py --model tiny --steps 2 --num-train 8 --num-eval 8 --seeds 0   # quick check
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("prefrl") is None:
    sys.path.insert(0, str(ROOT / "src"))

from harness import prune_run  # noqa: E402  (benchmarks/ is on the path: the script's own folder)

METHODS = {
    "BT": ("reward", {}),
    "DWRL": ("dwrl", {}),
    "DWRL (no misalignment weight)": ("dwrl", {"use_misalignment_weight": False}),
    "BT on pre-filled thoughts": ("dwrl", {"thoughts": "fixed"}),
    "BT (no thoughts)": ("dwrl", {"thoughts": "none"}),
    "pairwise judge": ("pairwise-rm", {}),
    "GRPO (pair)": ("gpm-grpo", {}),
}


def train_and_evaluate(method: str, task: str, seed: int, args: argparse.Namespace, run_dir: Path) -> dict:
    from prefrl.algorithms import RECIPES
    from prefrl.data.loaders import load_preference_pairs
    from prefrl.eval.preference import evaluate_preference
    from prefrl.preference import load_preference_model

    recipe, switches = METHODS[method]
    config_class, train = RECIPES[recipe]
    common = dict(model=args.model, data=task, seed=seed, max_steps=args.steps, batch_size=args.batch_size, num_train=args.num_train, output_dir=str(run_dir), progress=False, bf16=args.bf16)
    if recipe == "reward":
        common.update(num_eval=0)
    elif recipe == "dwrl":
        common.update(num_eval=0, n_thoughts=args.n_thoughts, max_thought_tokens=args.max_thought_tokens)
    elif recipe == "pairwise-rm":
        common.update(num_eval=0)
    elif recipe == "gpm-grpo":
        common.update(num_eval=0, max_new_tokens=args.max_thought_tokens, lr=1e-6)
    started = time.perf_counter()
    train(config_class(**common, **switches))
    seconds = time.perf_counter() - started
    pairs = load_preference_pairs(task, "test", 0, args.num_eval)
    model = load_preference_model(str(run_dir), n_thoughts=args.n_thoughts)
    return {**evaluate_preference(model, pairs), "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="arithmetic,constraints")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-train", type=int, default=160)
    parser.add_argument("--num-eval", type=int, default=100)
    parser.add_argument("--n-thoughts", type=int, default=4)
    parser.add_argument("--max-thought-tokens", type=int, default=48)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--runs", default="runs/preference_table")
    parser.add_argument("--out", default="", help="append the markdown table to this file")
    args = parser.parse_args()

    started = time.perf_counter()
    results: dict[tuple[str, str], list[dict]] = {}
    # Seed outermost, so an interrupted run still has a complete table for the first seed; a run
    # whose result.json exists is read back instead of trained again (re-run to add seeds).
    for seed in [int(s) for s in args.seeds.split(",")]:
        for task in args.tasks.split(","):
            for method in args.methods.split(","):
                run_dir = Path(args.runs) / task / method.replace(" ", "_").replace("(", "").replace(")", "") / f"seed{seed}"
                if (run_dir / "result.json").exists():
                    result = json.loads((run_dir / "result.json").read_text())
                else:
                    result = train_and_evaluate(method, task, seed, args, run_dir)
                    (run_dir / "result.json").write_text(json.dumps(result))
                    prune_run(run_dir)
                results.setdefault((task, method), []).append(result)
                print(json.dumps({"task": task, "method": method, "seed": seed, **result}), flush=True)

    # Runs read back from result.json cost this invocation nothing, so its wall time says little
    # about the table's cost; the summed training time of every run in the table does.
    training_minutes = sum(r["train_seconds"] for runs in results.values() for r in runs) / 60
    lines = [
        f"`{shlex.join(['python', 'benchmarks/preference_table.py', *sys.argv[1:]])}`",
        "",
        f"Training time summed over the table's {sum(len(runs) for runs in results.values())} runs: {training_minutes:.0f} min; "
        f"this invocation's wall time: {(time.perf_counter() - started) / 60:.1f} min.",
        "",
        "| task | method | accuracy (mean over seeds) | per seed [95% CI] | Brier | ECE | position consistency | train s |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for (task, method), runs in results.items():
        per_seed = "; ".join(f"{r['accuracy']:.3f} [{r['accuracy_ci_low']:.2f}–{r['accuracy_ci_high']:.2f}]" for r in runs)
        # only a judge that reads A and B in both orders has one
        consistency = f"{statistics.mean(r['position_consistency'] for r in runs):.2f}" if all("position_consistency" in r for r in runs) else "—"
        lines.append(
            f"| {task} | {method} | {statistics.mean(r['accuracy'] for r in runs):.3f} | {per_seed} | "
            f"{statistics.mean(r['brier'] for r in runs):.3f} | {statistics.mean(r['ece'] for r in runs):.3f} | {consistency} | "
            f"{statistics.mean(r['train_seconds'] for r in runs):.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(table + "\n")


if __name__ == "__main__":
    main()
