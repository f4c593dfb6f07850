"""The loop for recipes that learn from a fixed dataset (reward models, DPO): deterministic data
order, resumable position, periodic checkpoints, metrics and progress; and the one run ending of
the recipes that train a preference model (reward, pairwise-rm, dwrl).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from prefrl.data.records import PreferencePair
from prefrl.engine.engine import Engine, LossFn
from prefrl.eval.preference import evaluate_preference
from prefrl.preference.base import PreferenceModel
from prefrl.utils import publish_directory, write_json


@dataclass
class GlobalBatchSampler:
    """An endless, reproducible stream of example indices.

    Epoch e is a permutation drawn from `seed + e`; optimizer step s takes stream[s·B : (s+1)·B].
    The position is therefore the step number alone, which makes resume exact, and process r of W
    takes the r-th contiguous share of the global batch, which makes W processes see exactly the
    examples one process would.
    """

    num_examples: int
    batch_size: int
    seed: int

    def _epoch_order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.num_examples, generator=generator).tolist()

    def indices_for_step(self, step: int) -> list[int]:
        start = step * self.batch_size
        indices: list[int] = []
        epoch, offset = divmod(start, self.num_examples)
        while len(indices) < self.batch_size:
            order = self._epoch_order(epoch)
            take = order[offset : offset + self.batch_size - len(indices)]
            indices.extend(take)
            epoch, offset = epoch + 1, 0
        return indices

    def micro_batches(self, step: int, rank: int, world: int, accumulation: int) -> list[list[int]]:
        indices = self.indices_for_step(step)
        share = len(indices) // world
        mine = indices[rank * share : (rank + 1) * share]
        size = share // accumulation
        return [mine[i * size : (i + 1) * size] for i in range(accumulation)]


def train_supervised(
    engine: Engine,
    examples: Sequence[Any],
    collate: Callable[[list[Any]], Any],
    loss_fn: LossFn,
    count_tokens: Callable[[Any], int],
    metric_prefix: str = "train/",
    progress_keys: tuple[str, ...] = ("train/loss",),
) -> None:
    """Run optimizer steps from `engine.step` up to `max_steps` over `examples`."""
    config = engine.config
    sampler = GlobalBatchSampler(len(examples), config.batch_size, config.seed)
    rank, world = engine.accelerator.process_index, engine.accelerator.num_processes
    engine.require_equal_micro_batches()
    with engine.progress(engine.recipe) as bar:
        while engine.step < config.max_steps:
            started = time.perf_counter()
            chunks = sampler.micro_batches(engine.step, rank, world, config.gradient_accumulation_steps)
            micro_batches = [collate([examples[i] for i in chunk]) for chunk in chunks]
            local_tokens = sum(count_tokens(b) for b in micro_batches)
            stats = engine.optimizer_step(micro_batches, loss_fn)
            engine.end_step()
            elapsed = time.perf_counter() - started
            tokens = engine.mean_over_processes({"tokens": float(local_tokens)})["tokens"] * world
            metrics = {f"{metric_prefix}{k}": v for k, v in stats.items()}
            metrics.update({"perf/tokens_per_s": tokens / elapsed, "perf/examples_per_s": config.batch_size / elapsed, "perf/step_s": elapsed})
            engine.close_step(metrics, bar, progress_keys, {"examples_seen": engine.step * config.batch_size})


def finish_preference_model_run(engine: Engine, model: PreferenceModel, eval_pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """The run ending of every preference-model recipe: save the trained model to <run>/model (where
    `prefrl eval` and the policy recipes look for it), evaluate it on the held-out pairs (metrics
    under `eval/` and <run>/eval.json), release the run. `model` already holds the trained weights."""
    output_dir = Path(engine.config.output_dir)
    result: dict[str, Any] = {"output_dir": engine.config.output_dir, "steps": engine.step}
    if engine.is_main:
        publish_directory(output_dir / "model", model.save)
    if eval_pairs and engine.is_main:
        result["eval"] = evaluate_preference(model, list(eval_pairs))
        engine.log({f"eval/{k}": v for k, v in result["eval"].items()})
        write_json(output_dir / "eval.json", result["eval"])
        consistency = f", position consistency {result['eval']['position_consistency']:.3f}" if "position_consistency" in result["eval"] else ""
        engine.print(f"[{engine.recipe}] held-out accuracy {result['eval']['accuracy']:.3f} on {len(eval_pairs)} pairs{consistency}")
    engine.finish()
    return result
