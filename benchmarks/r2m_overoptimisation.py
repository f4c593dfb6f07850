"""R2M against reward over-optimisation (paper 002), on a built-in task with a gold judge.

1. A proxy Bradley–Terry reward model with a known flaw: trained on few pairs (`--proxy-pairs`).
2. GRPO and RLOO from the same policy for the same number of steps, rewarded by the plain proxy or
   by R2M (and its ablations: frozen head, noise instead of h, no GRE, no BT), 2+ seeds.
3. Per step: proxy (or R2M) reward and gold reward of the samples; at the end, gold reward of greedy
   answers to held-out prompts and the gold win rate against the initial policy.
4. A PNG of gold and proxy reward against step, and a markdown table; R2M's time overhead per step.

    python benchmarks/r2m_overoptimisation.py                      # SmolLM2 (hours on 2 CPU cores)
    python benchmarks/r2m_overoptimisation.py --model tiny --steps 2 --seeds 0 --variants plain,r2m --algos grpo   # quick check
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("prefrl") is None:
    sys.path.insert(0, str(ROOT / "src"))

from harness import prune_run  # noqa: E402  (benchmarks/ is on the path: the script's own folder)

VARIANTS = {"plain": None, "r2m": "none", "r2m-frozen": "frozen", "r2m-noise": "noise", "r2m-no-gre": "no-gre", "r2m-no-bt": "no-bt"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default="arithmetic")
    parser.add_argument("--proxy", default="", help="an existing BT run directory to use as the flawed proxy")
    parser.add_argument("--proxy-pairs", type=int, default=32)
    parser.add_argument("--algos", default="grpo,rloo")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-6)
    parser.add_argument("--r2m-lr", type=float, default=1e-4)
    parser.add_argument("--num-eval", type=int, default=64)
    parser.add_argument("--runs", default="runs/r2m_overoptimisation")
    parser.add_argument("--out", default="", help="append the markdown table to this file")
    args = parser.parse_args()

    from prefrl.algorithms.grpo import GRPOConfig, RLOOConfig, train_group_policy
    from prefrl.algorithms.reward import RewardConfig, train_reward
    from prefrl.data.loaders import load_prompts
    from prefrl.engine.metrics import read_metrics
    from prefrl.eval.winrate import policy_responses, win_rate
    from prefrl.preference import GoldJudge

    started = time.perf_counter()
    runs = Path(args.runs)
    proxy = args.proxy
    if not proxy:
        proxy = str(runs / "proxy")
    if not (Path(proxy) / "model").exists():
        train_reward(RewardConfig(model=args.model, data=args.data, num_train=args.proxy_pairs, max_steps=max(1, args.proxy_pairs // 4), batch_size=4, num_eval=100, output_dir=proxy, progress=False))
    gold = GoldJudge(args.data)
    prompts = load_prompts(args.data, "test", 0, args.num_eval)
    initial = policy_responses(args.model, prompts, args.max_new_tokens)

    rows, curves = [], {}
    for algo in args.algos.split(","):
        config_class = GRPOConfig if algo == "grpo" else RLOOConfig
        for variant in args.variants.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                run = runs / algo / variant / f"seed{seed}"
                if (run / "result.json").exists():  # finished earlier: re-running adds variants or seeds
                    rows.append(json.loads((run / "result.json").read_text()))
                    curves.setdefault((algo, variant), []).append(reward_curves(read_metrics(run)))
                    continue
                ablation = VARIANTS[variant]
                r2m_keys = dict(r2m=ablation is not None, r2m_ablation=ablation or "none", r2m_lr=args.r2m_lr)
                config = config_class(
                    model=args.model, data=args.data, reward=proxy, **r2m_keys, seed=seed, max_steps=args.steps, batch_size=args.batch_size, num_generations=args.num_generations,
                    max_new_tokens=args.max_new_tokens, lr=args.lr, num_eval=0, output_dir=str(run), progress=False,
                )
                train_group_policy(config, recipe=algo)
                metrics = [m for m in read_metrics(run) if "train/reward" in m]
                final = policy_responses(str(run), prompts, args.max_new_tokens)
                against_initial = win_rate(gold, [p.prompt for p in prompts], final, initial)
                row = {
                    "algo": algo, "variant": variant, "seed": seed,
                    "final_gold": float(gold.score([p.prompt for p in prompts], final).mean()),
                    "initial_gold": float(gold.score([p.prompt for p in prompts], initial).mean()),
                    "gold_win_rate": against_initial["win_rate"], "win_rate_ci": (against_initial["win_rate_ci_low"], against_initial["win_rate_ci_high"]),
                    "step_s": statistics.mean(m["perf/step_s"] for m in metrics),
                    "r2m_update_s": statistics.mean(m.get("perf/reward_update_s", m.get("perf/r2m_update_s", 0.0)) for m in metrics),
                }
                rows.append(row)
                (run / "result.json").write_text(json.dumps(row))
                prune_run(run)
                curves.setdefault((algo, variant), []).append(reward_curves(metrics))
                print(json.dumps(row), flush=True)

    lines = [
        f"`python benchmarks/r2m_overoptimisation.py --model {args.model} --data {args.data} --proxy-pairs {args.proxy_pairs} --steps {args.steps} "
        f"--batch-size {args.batch_size} --num-generations {args.num_generations} --seeds {args.seeds}` — {(time.perf_counter() - started) / 60:.1f} min",
        "",
        "| algo | reward | final held-out gold (mean over seeds) | gold win rate vs initial (per seed) | s/step | R2M update s/step |",
        "|---|---|---:|---|---:|---:|",
    ]
    for key in dict.fromkeys((r["algo"], r["variant"]) for r in rows):
        group = [r for r in rows if (r["algo"], r["variant"]) == key]
        per_seed = "; ".join(f"{r['gold_win_rate']:.3f} [{r['win_rate_ci'][0]:.2f}–{r['win_rate_ci'][1]:.2f}]" for r in group)
        lines.append(f"| {key[0]} | {key[1]} | {statistics.mean(r['final_gold'] for r in group):.3f} (initial {group[0]['initial_gold']:.3f}) | {per_seed} | {statistics.mean(r['step_s'] for r in group):.2f} | {statistics.mean(r['r2m_update_s'] for r in group):.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(table + "\n")
    plot(curves, runs / "curves.png")


def reward_curves(metrics: list[dict]) -> tuple[list[int], list[float], list[float]]:
    """(steps, proxy or R2M reward, gold reward) of the sampled responses, per training step."""
    steps = [m for m in metrics if "train/reward" in m]
    return [m["step"] for m in steps], [m["train/reward"] for m in steps], [m["train/gold_reward"] for m in steps]


def plot(curves: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'prefrl[plot]')")
        return
    algos = sorted({algo for algo, _ in curves})
    figure, axes = plt.subplots(len(algos), 2, figsize=(11, 3.5 * len(algos)), squeeze=False)
    for row, algo in enumerate(algos):
        for (name, variant), series in curves.items():
            if name != algo:
                continue
            steps = series[0][0]
            for column, index, title in ((0, 2, "gold reward of samples"), (1, 1, "proxy / R2M reward of samples")):
                mean = [statistics.mean(s[index][i] for s in series) for i in range(len(steps))]
                axes[row][column].plot(steps, mean, label=variant)
                axes[row][column].set_title(f"{algo}: {title}")
                axes[row][column].set_xlabel("step")
        axes[row][0].legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
