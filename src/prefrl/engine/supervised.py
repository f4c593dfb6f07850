"""The loop for recipes that learn from a fixed dataset (reward models, DPO): deterministic data
order, resumable position, periodic checkpoints, metrics and progress.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from prefrl.engine.engine import Engine, LossFn


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
            if engine.step % config.logging_steps == 0 or engine.step == config.max_steps:
                engine.log(metrics)
            bar.advance(metrics, progress_keys)
            if engine.should_save():
                engine.save_checkpoint({"examples_seen": engine.step * config.batch_size})
