"""SPPO against iterative DPO (paper 003's comparison) on prefrl's built-in tasks.

For each task and oracle (the gold judge, and a learned Bradley–Terry model), T self-play
iterations from the same policy: SPPO, and iterative DPO on the same kind of generated pairs with
the same budget (prompts, samples, steps per iteration). After every iteration: the gold win rate
of π_t over π_0 on held-out prompts (95% interval) and the gold accuracy of π_t's answers.

    python benchmarks/sppo_results.py                                              # SmolLM2 (long on 2 CPU cores)
    python benchmarks/sppo_results.py --model tiny --iterations 2 --steps 1 --prompts 4 --num-eval 4   # quick check
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("prefrl") is None:
    sys.path.insert(0, str(ROOT / "src"))

from harness import prune_run  # noqa: E402  (benchmarks/ is on the path: the script's own folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="arithmetic,constraints")
    parser.add_argument("--oracles", default="gold,learned")
    parser.add_argument("--losses", default="sppo,sigmoid")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--eta", type=float, default=1000.0)
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--num-eval", type=int, default=64)
    parser.add_argument("--rm-steps", type=int, default=40)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--runs", default="runs/sppo_results")
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    from prefrl.algorithms.reward import RewardConfig, train_reward
    from prefrl.algorithms.sppo import SPPOConfig, train_sppo

    started = time.perf_counter()
    runs = Path(args.runs)
    lines = [
        f"`python benchmarks/sppo_results.py --model {args.model} --tasks {args.tasks} --oracles {args.oracles} --losses {args.losses} --iterations {args.iterations} "
        f"--steps {args.steps} --prompts {args.prompts} --samples {args.samples} --eta {args.eta} --lr {args.lr}`",
        "",
        "| task | oracle | method | iteration | gold win rate vs π₀ [95% CI] | gold accuracy | minutes |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for task in args.tasks.split(","):
        for oracle_name in args.oracles.split(","):
            oracle = ""
            if oracle_name == "learned":
                oracle = str(runs / task / "bt")
            if oracle and not (Path(oracle) / "model").exists():
                train_reward(RewardConfig(model=args.model, data=task, max_steps=args.rm_steps, batch_size=8, num_train=args.rm_steps * 8, num_eval=100, output_dir=oracle, progress=False, bf16=args.bf16))
            for loss in args.losses.split(","):
                run = runs / task / oracle_name / loss
                t0 = time.perf_counter()
                if (run / "result.json").exists():  # finished earlier: re-running adds tasks, oracles or losses
                    result = json.loads((run / "result.json").read_text())
                else:
                    result = train_sppo(SPPOConfig(
                        model=args.model, data=task, reward=oracle, loss=loss, iterations=args.iterations, max_steps=args.steps,
                        prompts_per_iteration=args.prompts, num_generations=args.samples, max_new_tokens=args.max_new_tokens, eta=args.eta,
                        lr=args.lr, num_eval=args.num_eval, output_dir=str(run), progress=False, bf16=args.bf16,
                    ))
                    result["minutes"] = (time.perf_counter() - t0) / 60
                    (run / "result.json").write_text(json.dumps({"iterations": result["iterations"], "minutes": result["minutes"]}))
                    prune_run(run)
                minutes = result["minutes"]
                method = "SPPO" if loss == "sppo" else f"iterative {'DPO' if loss == 'sigmoid' else loss}"
                for it in result["iterations"]:
                    print(json.dumps({"task": task, "oracle": oracle_name, "method": method, **it}), flush=True)
                    lines.append(
                        f"| {task} | {oracle_name} | {method} | {it['iteration']} | {it['eval/gold_vs_initial/win_rate']:.3f} "
                        f"[{it['eval/gold_vs_initial/win_rate_ci_low']:.2f}–{it['eval/gold_vs_initial/win_rate_ci_high']:.2f}] | "
                        f"{it['eval/gold_reward']:.3f} | {minutes:.1f} |"
                    )
    lines.append(f"\ntotal wall time {(time.perf_counter() - started) / 60:.1f} min")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(table + "\n")


if __name__ == "__main__":
    main()
