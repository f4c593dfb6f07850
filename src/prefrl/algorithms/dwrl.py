"""DWRL: Dual-Weighted Reinforcement Learning for a dialog generative preference model —
`prefrl train dwrl` (paper 000).

For each pair (y⁺, y⁻) and n thoughts per response sampled from the current model (π_old):

    p̂± = (1/n) Σᵢ π(a | x, y±, o±ᵢ)           w = sg(p̂⁻ / (p̂⁺ + p̂⁻))          ω̃±ᵢ = sg(π(a|o±ᵢ) / Σⱼ π(a|o±ⱼ))

  1. scoring step on the fixed thoughts:  L_score = −w Σᵢ [ω̃⁺ᵢ log π(a|o⁺ᵢ) − ω̃⁻ᵢ log π(a|o⁻ᵢ)]
  2. recompute w and ω̃ with the updated model
  3. thought step: PPO-clip on ρᵢ = π(oᵢ)/π_old(oᵢ), one ratio per thought (its end token included),
     with advantage +w(ω̃⁺ᵢ − b) for thoughts of y⁺ and −w(ω̃⁻ᵢ − b) for thoughts of y⁻
     (b = 1/n by default, 0 with subtract_baseline=false)

Ablations: use_misalignment_weight=false (w = 1); thoughts=fixed (sampled once from the initial
model, scoring step only: BT on pre-filled thoughts; the saved model also takes its evaluation
thoughts from the initial model); thoughts=none (no critique: BT on the dialog's Yes-probability).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from prefrl.config import CheckpointSection, EvaluationSection, OptimSection, RunSection, option
from prefrl.data.loaders import load_preference_pairs
from prefrl.engine.engine import Engine
from prefrl.engine.supervised import GlobalBatchSampler, finish_preference_model_run
from prefrl.errors import ConfigError
from prefrl.objectives.dwrl import dwrl_scoring_loss, dwrl_thought_advantages, dwrl_thought_loss, group_score_entropy, group_scores, misalignment_weight
from prefrl.preference.dialog import DialogGPM, Dialogs


@dataclass
class DWRLConfig(EvaluationSection, CheckpointSection, OptimSection, RunSection):
    """Dialog GPM trained with DWRL (and the paper's ablations as switches)."""

    output_dir: str = option("runs/dwrl", "Run directory.")
    lr: float = option(1e-5, "Peak learning rate (AdamW).")
    batch_size: int = option(4, "Pairs per step (global).")
    n_thoughts: int = option(4, "Thoughts sampled per response (n).")
    max_thought_tokens: int = option(48, "Longest thought.")
    temperature: float = option(1.0, "Thought sampling temperature.")
    clip_eps: float = option(0.2, "PPO clip ε of the thought step.")
    use_misalignment_weight: bool = option(True, "w = p̂⁻/(p̂⁺ + p̂⁻); false sets w = 1 (ablation).")
    subtract_baseline: bool = option(True, "Centre the thought advantage: ω̃ − 1/n (false: raw ω̃).")
    thoughts: str = option("sampled", "sampled (DWRL); fixed (sampled once from the initial model, no thought step); none (no thoughts).")
    eval_n_thoughts: int = option(4, "Thoughts per response when scoring the held-out pairs.")
    eval_batch_size: int = option(8, "Responses per scoring call in evaluation.")
    data_seed: int = option(0, "Seed of the built-in task generator.")

    def validate(self) -> None:
        super().validate()
        if self.thoughts not in ("sampled", "fixed", "none"):
            raise ConfigError(f"config key 'thoughts' must be sampled, fixed or none, got {self.thoughts!r}")
        if self.n_thoughts < 1:
            raise ConfigError("config key 'n_thoughts' must be at least 1")


@dataclass
class DialogPair:
    prefixes: tuple[list[int], list[int]]  # (chosen, rejected) turn-1 prefixes
    suffixes: tuple[list[int], list[int]]
    fixed_thoughts: list[list[int]] | None = None  # 2n thoughts from the initial model (thoughts=fixed)


def pair_dialogs(gpm: DialogGPM, pairs: list[DialogPair], thoughts: list[list[int]], n: int) -> Dialogs:
    """Rows ordered [chosen of pair 0 (n rows), …, chosen of pair B−1, rejected of pair 0, …]."""
    prefixes = [p.prefixes[side] for side in (0, 1) for p in pairs for _ in range(n)]
    suffixes = [p.suffixes[side] for side in (0, 1) for p in pairs for _ in range(n)]
    return gpm.dialogs(prefixes, thoughts, suffixes)


def split_sides(values: torch.Tensor, count: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(2·B·n,) → ((B, n) for y⁺, (B, n) for y⁻)."""
    grouped = values.view(2, count, n)
    return grouped[0], grouped[1]


def scoring_step_loss(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
    output = model(batch["dialogs"])
    pos, neg = split_sides(output.answer_logprobs, batch["count"], batch["n"])
    return dwrl_scoring_loss(pos, neg, batch["weight"], batch["scores_pos"], batch["scores_neg"])


def thought_step_loss(model: torch.nn.Module, batch: dict[str, Any], config: DWRLConfig) -> tuple[torch.Tensor, dict]:
    output = model(batch["dialogs"])
    return dwrl_thought_loss(output.thought_logprobs, batch["old_thought_logprobs"], batch["advantages"], batch["count"], config.clip_eps)


def micro_batches(count: int, n: int, pieces: int) -> list[torch.Tensor]:
    """Row indices of each micro-batch, keeping a pair's 2n dialogs together (count divisible by pieces)."""
    size = count // pieces
    chunks = [list(range(s, min(s + size, count))) for s in range(0, count, size)]
    return [torch.tensor([side * count * n + p * n + i for side in (0, 1) for p in chunk for i in range(n)]) for chunk in chunks]


def scoring_batches(dialogs: Dialogs, pieces: list[torch.Tensor], count: int, n: int, weight: torch.Tensor, scores_pos: torch.Tensor, scores_neg: torch.Tensor) -> list[dict[str, Any]]:
    """One scoring-step batch per micro-batch of rows, with its pairs' w and ω̃."""
    batches = []
    for rows in pieces:
        pairs = torch.tensor(sorted({int(r) % (count * n) // n for r in rows}))
        batches.append({"dialogs": dialogs.rows(rows), "count": len(pairs), "n": n, "weight": weight[pairs], "scores_pos": scores_pos[pairs], "scores_neg": scores_neg[pairs]})
    return batches


def thought_batches(dialogs: Dialogs, pieces: list[torch.Tensor], n: int, advantages: torch.Tensor, old_thought_logprobs: torch.Tensor) -> list[dict[str, Any]]:
    """One thought-step batch per micro-batch of rows; `advantages` and the π_old log-probs are per row."""
    return [
        {"dialogs": dialogs.rows(rows), "count": len(rows) // (2 * n), "advantages": advantages[rows], "old_thought_logprobs": old_thought_logprobs[rows]}
        for rows in pieces
    ]


def train_dwrl(config: DWRLConfig) -> dict[str, Any]:
    engine = Engine(config, recipe="dwrl")
    engine.require_equal_micro_batches()

    # 1. Data and the model; every dialog prefix/suffix tokenized once.
    train = load_preference_pairs(config.data, config.train_split, config.data_seed, config.num_train)
    evaluation = load_preference_pairs(config.data, config.eval_split, config.data_seed, config.num_eval) if config.num_eval else []
    gpm = DialogGPM.from_base(config.model, dtype=config.dtype, cache_dir=config.cache_dir or None, n_thoughts=config.n_thoughts, max_thought_tokens=config.max_thought_tokens, temperature=config.temperature, batch_size=config.eval_batch_size)
    examples = []
    for pair in train:
        prefixes, suffixes = gpm.dialog_parts([pair.prompt, pair.prompt], [pair.chosen, pair.rejected])
        examples.append(DialogPair(tuple(prefixes), tuple(suffixes)))
    n = config.n_thoughts if config.thoughts != "none" else 1
    sampler = GlobalBatchSampler(len(examples), config.batch_size, config.seed)
    if config.thoughts == "fixed":  # from the initial model, for every pair training will see
        seen = sorted({i for step in range(config.max_steps) for i in sampler.indices_for_step(step)})
        generator = torch.Generator().manual_seed(config.seed)
        for i in seen:
            examples[i].fixed_thoughts = gpm.sample_thoughts(list(examples[i].prefixes), n, generator)
    engine.start_run()
    thought_step = config.thoughts == "sampled"
    model = engine.prepare(gpm.scorer, updates_per_step=2 if thought_step else 1)
    rank, world = engine.accelerator.process_index, engine.accelerator.num_processes

    with engine.progress("dwrl") as bar:
        while engine.step < config.max_steps:
            started, timings = time.perf_counter(), {}
            (indices,) = sampler.micro_batches(engine.step, rank, world, 1)
            pairs = [examples[i] for i in indices]
            count = len(pairs)

            # 2. Thoughts: n per response from π_old (prefix encoded once per response), fixed, or none.
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + engine.step * 7919 + rank)
            t0 = time.perf_counter()
            if config.thoughts == "sampled":
                sampled = gpm.sample_thoughts([p.prefixes[side] for side in (0, 1) for p in pairs], n, generator)
            elif config.thoughts == "fixed":
                sampled = [p.fixed_thoughts[side * n + i] for side in (0, 1) for p in pairs for i in range(n)]
            else:
                sampled = [[] for _ in range(2 * count)]
            timings["sampling"] = time.perf_counter() - t0
            dialogs = pair_dialogs(gpm, pairs, sampled, n)

            # 3. π_old quantities, w and ω̃ (no graph).
            unwrapped = engine.unwrap(model)
            with torch.no_grad():
                old = unwrapped(dialogs)
            answer_pos, answer_neg = split_sides(old.answer_logprobs, count, n)
            weight = misalignment_weight(answer_pos, answer_neg, config.use_misalignment_weight)
            scores_pos, scores_neg = group_scores(answer_pos), group_scores(answer_neg)

            # 4. Scoring step on the fixed thoughts.
            t0 = time.perf_counter()
            pieces = micro_batches(count, n, config.gradient_accumulation_steps)
            score_stats = engine.optimizer_step(scoring_batches(dialogs, pieces, count, n, weight, scores_pos, scores_neg), scoring_step_loss)
            timings["scoring_step"] = time.perf_counter() - t0

            # 5. Thought step: recompute w, ω̃ with the updated model, then PPO-clip on the thoughts.
            thought_stats: dict[str, float] = {}
            if thought_step:
                t0 = time.perf_counter()
                with torch.no_grad():
                    new = engine.unwrap(model)(dialogs)
                new_pos, new_neg = split_sides(new.answer_logprobs, count, n)
                new_weight = misalignment_weight(new_pos, new_neg, config.use_misalignment_weight)
                adv_pos, adv_neg = dwrl_thought_advantages(new_weight, group_scores(new_pos), group_scores(new_neg), config.subtract_baseline)
                advantages = torch.cat([adv_pos.reshape(-1), adv_neg.reshape(-1)])
                batches = thought_batches(dialogs, pieces, n, advantages, old.thought_logprobs)
                thought_stats = engine.optimizer_step(batches, lambda m, b: thought_step_loss(m, b, config))
                timings["thought_step"] = time.perf_counter() - t0
            engine.end_step()

            # 6. Metrics and checkpoint.
            metrics = {f"dwrl/score_{k}": v for k, v in score_stats.items()}
            metrics.update({f"dwrl/thought_{k}": v for k, v in thought_stats.items()})
            metrics.update(engine.mean_over_processes({
                "dwrl/weight_mean": float(weight.mean()),
                "dwrl/group_score_entropy": float(torch.cat([group_score_entropy(scores_pos), group_score_entropy(scores_neg)]).mean()),
                "dwrl/p_chosen": float(answer_pos.exp().mean()),
                "dwrl/p_rejected": float(answer_neg.exp().mean()),
                "dwrl/pair_accuracy": float((answer_pos.exp().mean(-1) > answer_neg.exp().mean(-1)).float().mean()),
                "dwrl/thought_length": float(dialogs.thought_length.float().mean()),
            }))
            metrics.update({f"perf/{k}_s": v for k, v in timings.items()})
            metrics["perf/thoughts_per_s"] = len(sampled) / max(timings["sampling"], 1e-9) if config.thoughts == "sampled" else 0.0
            metrics["perf/step_s"] = time.perf_counter() - started
            engine.close_step(metrics, bar, ("dwrl/score_loss", "dwrl/pair_accuracy"))

    gpm.scorer = engine.unwrap(model)
    gpm.n_thoughts = config.eval_n_thoughts
    if config.thoughts == "fixed":  # scored with thoughts from the model that wrote the training thoughts
        gpm.freeze_thoughts_to(config.model)
    if config.thoughts == "none":  # the saved model scores without a critique, as it was trained
        gpm.n_thoughts, gpm.max_thought_tokens = 1, 0
    return finish_preference_model_run(engine, gpm, evaluation)
