"""`prefrl demo`: the whole loop on the embedded default, sized for a 2-core CPU (≤ 10 minutes).

  1. score held-out preference pairs of a built-in task (default `constraints`) — the test split
     (same generator as training) and the ood split (other templates, phrasings and kinds) — with
     SmolLM2-135M-Instruct and a fresh reward head (before);
  2. train a Bradley–Terry reward model on the task's preference pairs and score the pairs again;
  3. align the policy with RLOO, **that reward model** as its only reward; the task's gold judge is
     only watched: every step's samples get both the reward model's score and the gold verdict, so
     over-optimisation (proxy up, gold down) would show;
  4. print the before/after table — preference accuracy (test and ood), and the policy's held-out
     gold accuracy with the paired counts (prompts fixed / broken) and the exact sign test — and
     save a plot (runs/demo/demo.png) that reads without this text.

RLOO is the demo's optimiser because it learned most steadily from a learned reward in
`benchmarks/learning.py` and kept answer length (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from prefrl.algorithms.grpo import RLOOConfig, train_rloo
from prefrl.algorithms.reward import RewardConfig, train_reward
from prefrl.data.loaders import load_preference_pairs
from prefrl.data.tasks.base import SPLITS
from prefrl.engine.metrics import read_metrics
from prefrl.engine.threads import default_bf16
from prefrl.eval.preference import evaluate_preference
from prefrl.eval.stats import format_p, wilson_interval
from prefrl.preference.bradley_terry import BradleyTerryModel
from prefrl.utils import write_json


@dataclass
class DemoBudget:
    """How much work each stage does; sized for ~10 minutes on 2 CPU cores, measured 13.3 (bf16 units) and 17.7 (fp32)
    minutes (docs/benchmarks.md, "The demo")."""

    reward_steps: int = 40
    reward_batch: int = 8
    eval_pairs: int = 100
    policy_steps: int = 12
    policy_lr: float = 2e-5  # the demo's measured run (docs/benchmarks.md); the recipes' default is 4e-5
    policy_prompts: int = 8  # prompts per step
    policy_samples: int = 8  # K responses per prompt
    max_new_tokens: int = 64
    eval_prompts: int = 64
    # The demo's reward model, trained on written pairs, pays for short answers; plain RLOO collects that within a
    # few steps (held-out gold 0.281 -> 0.062 on 64 prompts, answers 49 -> 5 tokens). With the length slope taken
    # out of each step's rewards it kept length and gold (0.281 -> 0.297; paired against plain 17 / 2, p = 7e-4).
    length_debias: bool = True
    bf16: bool = field(default_factory=default_bf16)  # autocast only where the CPU/GPU has bf16 units: emulated it is far slower


def held_out_splits() -> list[str]:
    """test, and ood where the built-in tasks have it."""
    return ["test", "ood"] if "ood" in SPLITS else ["test"]


def run_demo(
    output_dir: str = "runs/demo", model: str = "smollm2-135m-instruct", max_steps: int | None = None, num_eval: int | None = None,
    budget: DemoBudget | None = None, data: str = "constraints",
) -> dict[str, Any]:
    console = Console()
    started = time.perf_counter()
    out = Path(output_dir)
    budget = budget or DemoBudget()
    reward_steps = budget.reward_steps if max_steps is None else max_steps
    eval_pairs_count = budget.eval_pairs if num_eval is None else num_eval
    reward_config = RewardConfig(
        model=model, data=data, output_dir=str(out / "reward"), max_steps=reward_steps, batch_size=budget.reward_batch,
        lr=5e-5, num_train=reward_steps * budget.reward_batch, num_eval=0, bf16=budget.bf16, progress=False, overwrite=True,
    )
    console.rule(f"[bold]prefrl demo: reward model → policy alignment, judged on held-out {data}")
    console.print(
        f"model {model}; reward model {reward_steps} steps × {budget.reward_batch} pairs; RLOO {budget.policy_steps} steps × "
        f"{budget.policy_prompts} prompts × {budget.policy_samples} samples, reward = the trained reward model"
        + (" with its length slope taken out of each step (length_debias=true)" if budget.length_debias else "")
    )

    # 1. Before: the pretrained backbone with the head training starts from (same seed).
    console.print("[bold]1/4[/] scoring held-out pairs with the untrained reward model")
    splits = held_out_splits()
    pairs = {split: load_preference_pairs(data, split, reward_config.data_seed, eval_pairs_count) for split in splits}
    from accelerate.utils import set_seed

    set_seed(reward_config.seed)
    initial = BradleyTerryModel.from_base(model, batch_size=reward_config.eval_batch_size)
    before = {split: evaluate_preference(initial, rows) for split, rows in pairs.items()}
    del initial

    # 2. Train the reward model, then score the same held-out pairs.
    console.print("[bold]2/4[/] training the Bradley–Terry reward model")
    train_reward(reward_config)
    trained = BradleyTerryModel.load(str(out / "reward" / "model"), batch_size=reward_config.eval_batch_size)
    after = {split: evaluate_preference(trained, rows) for split, rows in pairs.items()}
    del trained
    write_json(out / "reward" / "eval.json", after)

    # 3. RLOO with the trained reward model as its reward; gold is evaluated, never learned from.
    console.print("[bold]3/4[/] aligning the policy with RLOO (reward: the reward model just trained)")
    policy_config = RLOOConfig(
        model=model, data=data, reward=str(out / "reward"), output_dir=str(out / "rloo"), max_steps=budget.policy_steps,
        batch_size=budget.policy_prompts, num_generations=budget.policy_samples, max_new_tokens=budget.max_new_tokens,
        lr=budget.policy_lr, num_eval=budget.eval_prompts, bf16=budget.bf16, length_debias=budget.length_debias, progress=False, overwrite=True,
    )
    policy = train_rloo(policy_config)
    first, last = policy["eval_before"], policy["eval_after"]

    # 4. The table and the plot.
    console.print("[bold]4/4[/] results")
    table = Table(title=f"prefrl demo — held-out {data}")
    for column in ("what", "measure", "before", "after", "paired test / 95% CI"):
        table.add_column(column)
    for split in splits:
        label = "test split (same generator)" if split == "test" else "ood split (new templates, topics, kinds)"
        table.add_row(
            "reward model", f"preference accuracy, {label}, {after[split]['num_pairs']} pairs", f"{before[split]['accuracy']:.3f}",
            f"{after[split]['accuracy']:.3f}", f"{after[split]['accuracy_ci_low']:.3f}–{after[split]['accuracy_ci_high']:.3f}",
        )
    paired = f"{last['eval/gold_vs_initial/fixed']} fixed, {last['eval/gold_vs_initial/broken']} broken, p = {format_p(last['eval/gold_vs_initial/sign_test_p'])}"
    table.add_row(
        "policy (RLOO)", f"gold accuracy of greedy answers, {budget.eval_prompts} held-out prompts", f"{first['eval/gold_reward']:.3f}", f"{last['eval/gold_reward']:.3f}", paired,
    )
    table.add_row("", "reward-model score of those answers", f"{first['eval/proxy_reward']:.2f}", f"{last['eval/proxy_reward']:.2f}", "")
    table.add_row("", "answer length (tokens)", f"{first['eval/response_length']:.1f}", f"{last['eval/response_length']:.1f}", "")
    console.print(table)
    summary = {
        "reward_before": before, "reward_after": after, "policy_before": first, "policy_after": last,
        "curve": policy_curve(out / "rloo"), "budget": asdict(budget), "seconds": time.perf_counter() - started,
    }
    write_json(out / "demo.json", summary)
    plot = save_plot(out, summary)
    console.print(
        gold_verdict(last["eval/gold_vs_initial/fixed"], last["eval/gold_vs_initial/broken"], last["eval/gold_vs_initial/sign_test_p"])
        + f" Run directory: {out}" + (f"; plot: {plot}" if plot else "") + f"; {summary['seconds'] / 60:.1f} minutes"
    )
    return summary


def gold_verdict(fixed: int, broken: int, p: float, alpha: float = 0.05) -> str:
    """The demo's last line: did held-out gold accuracy rise, fall (the policy over-optimised the reward
    model), or not move detectably, by the exact sign test at `alpha`."""
    if p < alpha and fixed > broken:
        return "[bold green]The policy's held-out gold accuracy rose significantly."
    if p < alpha and broken > fixed:
        return "[bold red]The policy's held-out gold accuracy fell significantly: it over-optimised the reward model."
    return "[bold yellow]No significant change in held-out gold accuracy."


def policy_curve(run_dir: Path) -> list[dict[str, float]]:
    """Per policy step: the reward model's mean score of that step's samples and their gold accuracy
    (the task's rule, watched, never learned from) — the over-optimisation curve at no extra cost."""
    return [
        {"step": m["step"], "proxy_reward": m["train/reward"], "gold_accuracy": m["train/gold_reward"], "samples": m.get("train/samples", 0)}
        for m in read_metrics(run_dir) if "train/gold_reward" in m
    ]


def budget_samples(summary: dict[str, Any]) -> int:
    return int(summary["budget"]["policy_prompts"] * summary["budget"]["policy_samples"])


def save_plot(out: Path, summary: dict[str, Any]) -> Path | None:
    """Three panels a newcomer can read: reward-model accuracy before/after (intervals), held-out
    gold accuracy and proxy reward over policy steps, and gold accuracy per prompt kind."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.6))

    # (a) the reward model: held-out accuracy before and after training, per split, 95% intervals
    splits = [split for split in ("test", "ood") if split in summary["reward_after"]]
    for offset, (name, stage) in enumerate((("before training", "reward_before"), ("after training", "reward_after"))):
        values = [summary[stage][s]["accuracy"] for s in splits]
        errors = [[v - summary[stage][s]["accuracy_ci_low"] for v, s in zip(values, splits)], [summary[stage][s]["accuracy_ci_high"] - v for v, s in zip(values, splits)]]
        positions = [i + (offset - 0.5) * 0.38 for i in range(len(splits))]
        axes[0].bar(positions, values, width=0.36, yerr=errors, capsize=4, label=name, color=("#bbbbbb", "#3b7dd8")[offset])
        for x, v in zip(positions, values):
            axes[0].text(x, v + 0.06, f"{v:.2f}", ha="center", fontsize=9)
    axes[0].axhline(0.5, color="gray", linestyle="--", linewidth=1)
    axes[0].text(-0.45, 0.51, "chance", color="gray", fontsize=8, ha="left")
    axes[0].set_xticks(range(len(splits)), [f"{s} pairs" for s in splits])
    axes[0].set_ylim(0, 1.1)
    axes[0].set_ylabel("accuracy: chosen scored above rejected")
    axes[0].set_title("1. Reward model on held-out pairs")
    axes[0].legend(loc="lower right", fontsize=8)

    # (b) the policy's samples during training: the reward model's score and the gold accuracy
    curve = summary["curve"]
    steps = [c["step"] for c in curve]
    samples = budget_samples(summary)
    gold = [c["gold_accuracy"] for c in curve]
    intervals = [wilson_interval(g * samples, samples) for g in gold]
    axes[1].fill_between(steps, [i[0] for i in intervals], [i[1] for i in intervals], color="#2a9d4b", alpha=0.18, label="gold: 95% interval")
    axes[1].plot(steps, gold, "o-", color="#2a9d4b", label=f"gold accuracy of the step's {samples} samples")
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("RLOO step")
    axes[1].set_ylabel("gold accuracy (fraction of samples meeting the constraint)")
    proxy_axis = axes[1].twinx()
    proxy_axis.plot(steps, [c["proxy_reward"] for c in curve], "s--", color="#d8763b", label="reward-model score (what RLOO maximises)")
    proxy_axis.set_ylabel("mean reward-model score (logit)", color="#d8763b")
    first, after = summary["policy_before"], summary["policy_after"]
    axes[1].set_title(
        f"2. Policy on held-out prompts: gold {first['eval/gold_reward']:.2f} → {after['eval/gold_reward']:.2f}\n"
        f"({after['eval/gold_vs_initial/fixed']} prompts fixed, {after['eval/gold_vs_initial/broken']} broken; sign test p = {format_p(after['eval/gold_vs_initial/sign_test_p'])})",
        fontsize=10,
    )
    lines = axes[1].get_legend_handles_labels()[0] + proxy_axis.get_legend_handles_labels()[0]
    axes[1].legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize=8)

    # (c) gold accuracy per kind of prompt, before and after: which kinds improved
    before = {k.split("/", 2)[2]: v for k, v in summary["policy_before"].items() if k.startswith("eval/gold_reward/")}
    final = {k.split("/", 2)[2]: v for k, v in after.items() if k.startswith("eval/gold_reward/")}
    kinds = sorted(before)
    axes[2].barh([i + 0.2 for i in range(len(kinds))], [before[k] for k in kinds], height=0.38, color="#bbbbbb", label="initial policy")
    axes[2].barh([i - 0.2 for i in range(len(kinds))], [final.get(k, 0) for k in kinds], height=0.38, color="#2a9d4b", label="after RLOO")
    axes[2].set_yticks(range(len(kinds)), kinds)
    axes[2].invert_yaxis()
    axes[2].set_xlim(0, 1)
    axes[2].set_xlabel("held-out gold accuracy (fraction of prompts of that kind)")
    axes[2].set_title(
        f"3. Per kind of prompt (answer length {summary['policy_before']['eval/response_length']:.0f} → {after['eval/response_length']:.0f} tokens)", fontsize=10
    )
    axes[2].legend(loc="lower right", fontsize=8)

    figure.tight_layout()
    path = out / "demo.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
