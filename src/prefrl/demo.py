"""`prefrl demo`: the whole loop on the embedded default, sized for a 2-core CPU (~10 minutes).

  1. score held-out preference pairs of a built-in task (default `constraints`) with
     SmolLM2-135M-Instruct and a fresh reward head (before);
  2. train a Bradley–Terry reward model on the task's preference pairs, score the pairs again (after);
  3. align the policy with SPPO, the reward model as its preference oracle;
  4. print the before/after table — preference accuracy, and the gold win rate of the aligned
     policy over the initial one — and save a plot of the run in its directory.

The default task is `constraints` (verifiable instruction constraints): SmolLM2-135M-Instruct meets
about a quarter of them, so its answers differ in gold quality and a win rate can move. On
`arithmetic` (`--data arithmetic`) it solves almost none of the held-out problems within 48 tokens,
so both policies fail alike and the win rate is ½ by ties (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from prefrl.algorithms.reward import RewardConfig, train_reward
from prefrl.algorithms.sppo import SPPOConfig, train_sppo
from prefrl.data.loaders import load_preference_pairs
from prefrl.engine.metrics import read_metrics
from prefrl.eval.preference import evaluate_preference
from prefrl.preference.bradley_terry import BradleyTerryModel
from prefrl.utils import write_json

@dataclass
class DemoBudget:
    """How much work each stage does; the defaults fit ~10 minutes on 2 CPU cores (docs/benchmarks.md)."""

    reward_steps: int = 40
    reward_batch: int = 8
    eval_pairs: int = 100
    sppo_iterations: int = 2
    sppo_steps: int = 6
    sppo_prompts: int = 24
    sppo_samples: int = 4
    max_new_tokens: int = 48
    eval_prompts: int = 48
    bf16: bool = True


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
        lr=5e-5, num_train=reward_steps * budget.reward_batch, num_eval=eval_pairs_count, bf16=budget.bf16,
    )
    console.rule(f"[bold]prefrl demo: preference model → policy alignment, on held-out {data}")
    console.print(f"model {model}; reward model {reward_steps} steps × {budget.reward_batch} pairs; SPPO {budget.sppo_iterations} iterations × {budget.sppo_steps} steps")

    # 1. Before: the pretrained backbone with the head training starts from (same seed).
    console.print("[bold]1/4[/] scoring held-out pairs with the untrained reward model")
    eval_pairs = load_preference_pairs(data, "test", reward_config.data_seed, eval_pairs_count)
    from accelerate.utils import set_seed

    set_seed(reward_config.seed)
    initial = BradleyTerryModel.from_base(model, batch_size=reward_config.eval_batch_size)
    before = evaluate_preference(initial, eval_pairs)
    del initial

    # 2. Train the reward model; the recipe scores the same held-out pairs afterwards.
    console.print("[bold]2/4[/] training the Bradley–Terry reward model")
    reward_result = train_reward(reward_config)
    after = reward_result["eval"]

    # 3. SPPO with the trained reward model as the oracle; gold win rate against π_0 per iteration.
    console.print("[bold]3/4[/] aligning the policy with SPPO (oracle: the reward model)")
    sppo_config = SPPOConfig(
        model=model, data=data, oracle=str(out / "reward"), output_dir=str(out / "sppo"), iterations=budget.sppo_iterations,
        max_steps=budget.sppo_steps, batch_size=4, prompts_per_iteration=budget.sppo_prompts, num_generations=budget.sppo_samples,
        max_new_tokens=budget.max_new_tokens, eta=1000.0, lr=1e-5, num_eval=budget.eval_prompts, bf16=budget.bf16,
        lr_scheduler="constant", warmup_ratio=0.0,
    )
    sppo_result = train_sppo(sppo_config)

    # 4. The table and the plot.
    console.print("[bold]4/4[/] results")
    table = Table(title=f"prefrl demo — held-out {data} (test split)")
    for column in ("stage", "measure", "value", "95% CI"):
        table.add_column(column)
    for name, metrics in (("reward model, before training", before), ("reward model, after training", after)):
        table.add_row(name, "preference accuracy", f"{metrics['accuracy']:.3f}", f"{metrics['accuracy_ci_low']:.3f}–{metrics['accuracy_ci_high']:.3f}")
    for summary in sppo_result["iterations"]:
        if "gold_win_rate" in summary:
            table.add_row(
                f"policy after SPPO iteration {summary['iteration']}",
                "gold win rate vs initial policy",
                f"{summary['gold_win_rate']:.3f}",
                f"{summary['gold_win_rate_ci_low']:.3f}–{summary['gold_win_rate_ci_high']:.3f}",
            )
            table.add_row("", "gold accuracy of its answers", f"{summary['gold_reward']:.3f}", "")
    console.print(table)
    summary = {"reward_before": before, "reward_after": after, "sppo": sppo_result["iterations"], "seconds": time.perf_counter() - started}
    write_json(out / "demo.json", summary)
    plot = save_plot(out)
    console.print(f"run directory: {out}" + (f"; plot: {plot}" if plot else "") + f"; {summary['seconds'] / 60:.1f} minutes")
    return summary


def save_plot(out: Path) -> Path | None:
    """Reward-model loss and accuracy, SPPO loss, and the gold win rate per iteration (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    reward = [m for m in read_metrics(out / "reward") if "train/loss" in m]
    sppo = read_metrics(out / "sppo")
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot([m["step"] for m in reward], [m["train/loss"] for m in reward], label="BT loss")
    axes[0].plot([m["step"] for m in reward], [m["train/accuracy"] for m in reward], label="batch accuracy")
    axes[0].set_title("1. reward model")
    axes[0].set_xlabel("step")
    axes[0].legend()
    losses = [m for m in sppo if "train/loss" in m]
    axes[1].plot([m["step"] for m in losses], [m["train/loss"] for m in losses])
    axes[1].set_title("2. SPPO square loss")
    axes[1].set_xlabel("step")
    rates = [m for m in sppo if "eval/gold_win_rate" in m]
    axes[2].bar([str(int(m["eval/iteration"])) for m in rates], [m["eval/gold_win_rate"] for m in rates])
    axes[2].axhline(0.5, color="gray", linestyle="--")
    axes[2].set_ylim(0, 1)
    axes[2].set_title("3. gold win rate vs initial policy")
    axes[2].set_xlabel("SPPO iteration")
    figure.tight_layout()
    path = out / "demo.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
