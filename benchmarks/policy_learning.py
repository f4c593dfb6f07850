"""Does the policy learn? GRPO and RLOO with the gold judge as reward, PPO with a learned BT reward
model, pairwise PPO with a learned pairwise judge — held-out gold accuracy before/after and curves.

    python benchmarks/policy_learning.py                                  # SmolLM2 on arithmetic (long on 2 CPU cores)
    python benchmarks/policy_learning.py --model tiny --steps 2 --eval-steps 1 --num-eval 4   # quick check
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
    parser.add_argument("--data", default="arithmetic")
    parser.add_argument("--recipes", default="grpo,rloo,ppo,pairwise-ppo")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--eval-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-6)
    parser.add_argument("--num-eval", type=int, default=64)
    parser.add_argument("--rm-steps", type=int, default=40)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--runs", default="runs/policy_learning")
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    from prefrl.algorithms import RECIPES
    from prefrl.algorithms.pairwise_rm import PairwiseRMConfig, train_pairwise_rm
    from prefrl.algorithms.reward import RewardConfig, train_reward
    from prefrl.engine.metrics import read_metrics

    runs = Path(args.runs)
    started = time.perf_counter()
    learned: dict[str, str] = {}
    recipes = args.recipes.split(",")
    if "ppo" in recipes:
        learned["ppo"] = str(runs / "bt")
        train_reward(RewardConfig(model=args.model, data=args.data, max_steps=args.rm_steps, batch_size=8, num_train=args.rm_steps * 8, num_eval=100, output_dir=learned["ppo"], progress=False, bf16=args.bf16))
    if "pairwise-ppo" in recipes:
        learned["pairwise-ppo"] = str(runs / "judge")
        train_pairwise_rm(PairwiseRMConfig(model=args.model, data=args.data, max_steps=args.rm_steps, batch_size=4, num_train=args.rm_steps * 4, num_eval=100, output_dir=learned["pairwise-ppo"], progress=False, bf16=args.bf16))

    results = {}
    for recipe in recipes:
        config_class, train = RECIPES[recipe]
        options = dict(
            model=args.model, data=args.data, max_steps=args.steps, eval_steps=args.eval_steps, batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens, lr=args.lr, num_eval=args.num_eval, output_dir=str(runs / recipe), progress=False, bf16=args.bf16,
        )
        if recipe in ("grpo", "rloo"):
            options["num_generations"] = args.num_generations
        if recipe == "ppo":
            options["reward"] = learned["ppo"]
        if recipe == "pairwise-ppo":
            options["judge"] = learned["pairwise-ppo"]
        t0 = time.perf_counter()
        result = train(config_class(**options))
        curve = [(m["step"], m["eval/gold_reward"]) for m in read_metrics(runs / recipe) if "eval/gold_reward" in m]
        results[recipe] = {"before": result["eval_before"].get("eval/gold_reward"), "after": result["eval_after"].get("eval/gold_reward"), "curve": curve, "minutes": (time.perf_counter() - t0) / 60}
        print(json.dumps({recipe: results[recipe]}), flush=True)
        prune_run(runs / recipe)

    lines = [
        f"`python benchmarks/policy_learning.py --model {args.model} --data {args.data} --recipes {args.recipes} --steps {args.steps} --batch-size {args.batch_size} "
        f"--num-generations {args.num_generations} --max-new-tokens {args.max_new_tokens} --lr {args.lr}` — {(time.perf_counter() - started) / 60:.1f} min",
        "",
        "| recipe | reward | held-out gold accuracy before | after | curve (step: gold) | minutes |",
        "|---|---|---:|---:|---|---:|",
    ]
    sources = {"grpo": "gold judge", "rloo": "gold judge", "ppo": "learned BT", "pairwise-ppo": "learned pairwise judge vs anchor"}
    for recipe, r in results.items():
        curve = ", ".join(f"{s}: {g:.3f}" for s, g in r["curve"])
        lines.append(f"| {recipe} | {sources.get(recipe, '')} | {r['before']:.3f} | {r['after']:.3f} | {curve} | {r['minutes']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(table + "\n")


if __name__ == "__main__":
    main()
