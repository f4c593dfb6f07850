"""`prefrl demo`: the end-to-end job on the embedded default, sized for a 2-core CPU (~10 minutes).

Stage 1 scores the held-out arithmetic pairs with SmolLM2-135M-Instruct and a fresh reward head
(the "before" accuracy); stage 2 trains the Bradley–Terry reward model; stage 3 scores the same
pairs again and prints the before/after table.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from prefrl.algorithms.reward import RewardConfig, train_reward
from prefrl.data.loaders import load_preference_pairs
from prefrl.eval.preference import evaluate_preference
from prefrl.preference.bradley_terry import BradleyTerryModel
from prefrl.utils import write_json

# The budget: measured on the 2-core machine (docs/benchmarks.md).
DEMO_STEPS = 60
DEMO_BATCH = 8
DEMO_EVAL = 200


def run_demo(output_dir: str = "runs/demo", model: str = "smollm2-135m-instruct", max_steps: int | None = None, num_eval: int | None = None) -> dict:
    console = Console()
    num_eval = DEMO_EVAL if num_eval is None else num_eval
    config = RewardConfig(
        model=model,
        data="arithmetic",
        output_dir=str(Path(output_dir) / "reward"),
        max_steps=DEMO_STEPS if max_steps is None else max_steps,
        batch_size=DEMO_BATCH,
        lr=2e-5,
        num_train=(DEMO_STEPS if max_steps is None else max_steps) * DEMO_BATCH,
        num_eval=num_eval,
        save_steps=0,
    )
    console.rule("[bold]prefrl demo: Bradley–Terry reward model on held-out arithmetic")
    console.print(f"model {model}; {config.max_steps} steps × {config.batch_size} pairs; {num_eval} held-out pairs")

    # 1. Before: the pretrained backbone with the same freshly initialised head training starts from.
    console.print("[bold]1/3[/] scoring held-out pairs before training")
    eval_pairs = load_preference_pairs("arithmetic", "test", config.data_seed, num_eval)
    from accelerate.utils import set_seed

    set_seed(config.seed)
    initial = BradleyTerryModel.from_base(model, dtype=config.dtype, batch_size=config.eval_batch_size)
    before = evaluate_preference(initial, eval_pairs)
    del initial

    # 2 + 3. Train, then the recipe evaluates the same held-out pairs.
    console.print("[bold]2/3[/] training the reward model")
    result = train_reward(config)
    after = result["eval"]

    console.print("[bold]3/3[/] results")
    table = Table(title="Held-out preference accuracy (arithmetic, test split)")
    for column in ("model", "accuracy", "95% CI", "Brier", "ECE"):
        table.add_column(column)
    for name, metrics in (("before training", before), ("after training", after)):
        table.add_row(
            name,
            f"{metrics['accuracy']:.3f}",
            f"{metrics['accuracy_ci_low']:.3f}–{metrics['accuracy_ci_high']:.3f}",
            f"{metrics['brier']:.3f}",
            f"{metrics['ece']:.3f}",
        )
    console.print(table)
    summary = {"before": before, "after": after, "reward_run": config.output_dir}
    write_json(Path(output_dir) / "demo.json", summary)
    console.print(f"run directory: {output_dir}")
    return summary
