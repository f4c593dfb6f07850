"""DPO, IPO and TRL's sppo_hard on a preference dataset — `prefrl train dpo`.

With h = [log π(y⁺|x) − log π_ref(y⁺|x)] − [log π(y⁻|x) − log π_ref(y⁻|x)] (summed log-probs):

    sigmoid (DPO, Rafailov et al. 2023)   −(1 − ε) log σ(βh) − ε log σ(−βh)
    ipo (Azar et al. 2023)                (h − 1/(2β))²        (log-probs averaged per token, as TRL)
    sppo_hard (TRL)                       (Δ⁺ − 1/(2β))² + (Δ⁻ + 1/(2β))²

Two things make it fast: reference log-probs need no graph and are computed once per pair, the
first time the pair is seen (kept for later epochs), and logits are computed only on response
positions (the prompt never reaches the output layer).
Stages: 1 load and validate data → 2 policy and reference, the initial policy's held-out answers →
3 train → 4 save and evaluate (gold accuracy paired with the initial answers, on built-in tasks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from prefrl.config import MaxLengthSection, option
from prefrl.data.batching import left_pad, pad_sequences, tokenize_prompt_response
from prefrl.data.loaders import load_preference_pairs, load_prompts
from prefrl.data.tasks import is_task
from prefrl.engine.engine import Engine
from prefrl.algorithms.policy_setup import PolicyConfig, PolicySetup, finish_policy_run, load_policy, start_policy_run
from prefrl.engine.supervised import train_supervised
from prefrl.errors import ConfigError, DataError
from prefrl.models.policy import PolicyModel
from prefrl.objectives.preference_optimization import DPO_LOSSES, dpo_loss, pair_sequence_logps
from prefrl.preference import GoldJudge


@dataclass
class DPOConfig(MaxLengthSection, PolicyConfig):
    """Offline DPO / IPO / sppo_hard on preference pairs. Defaults sized for SmolLM2-135M-Instruct on the
    `constraints` pairs, 2 CPU cores: 20 steps × 16 pairs at lr 1e-5 — measured: this budget does not yet
    move the policy's held-out gold accuracy (docs/benchmarks.md, "Learning with the shipped defaults")."""

    output_dir: str = option("runs/dpo", "Run directory.")
    lr: float = option(1e-5, "Peak learning rate (AdamW).")
    lr_scheduler: str = option("linear", "Decay after warm-up: cosine, linear or constant.")
    warmup_ratio: float = option(0.1, "Fraction of max_steps spent warming up.")
    batch_size: int = option(16, "Pairs per optimizer step (global).")
    beta: float = option(0.1, "β of the DPO family.")
    loss_type: str = option("sigmoid", "sigmoid (DPO), ipo, or sppo_hard.")
    label_smoothing: float = option(0.0, "ε of conservative DPO (sigmoid only).")
    num_eval: int = option(64, "Held-out prompts for a gold evaluation of the policy before and after training, on built-in tasks (0: none).")

    def validate(self) -> None:
        super().validate()
        if self.loss_type not in DPO_LOSSES:
            raise ConfigError(f"config key 'loss_type' must be one of {', '.join(DPO_LOSSES)}, got {self.loss_type!r}")
        if self.beta <= 0:
            raise ConfigError(f"config key 'beta' must be positive, got {self.beta}")


@dataclass
class PairExample:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    reference_logps: torch.Tensor | None = None  # (2,) filled the first time the pair is used

    @property
    def num_tokens(self) -> int:
        return 2 * len(self.prompt_ids) + len(self.chosen_ids) + len(self.rejected_ids)


def sequence_logps(policy: torch.nn.Module, batch: dict[str, Any], loss_type: str) -> torch.Tensor:
    """(B, 2) log-probs of (chosen, rejected) for each pair as `loss_type` reads them: summed, or
    per-token means for IPO (`pair_sequence_logps`, the rule SPPO's DPO-family losses share)."""
    mask = batch["response_mask"]
    output = policy(batch["prompt_ids"], batch["prompt_mask"], batch["prompt_ids"].shape[1], response_ids=batch["response_ids"], response_mask=mask)
    total = (output.logprobs * mask).sum(-1)
    return pair_sequence_logps(total, mask.sum(-1), loss_type).view(-1, 2)


def collate_pairs_for_policy(rows: list[PairExample], pad_token_id: int) -> dict[str, Any]:
    """Each prompt once (left-padded); its chosen and rejected responses after it (interleaved)."""
    prompt_ids, prompt_mask = left_pad([r.prompt_ids for r in rows], pad_token_id)
    response_ids, response_mask = pad_sequences([ids for r in rows for ids in (r.chosen_ids, r.rejected_ids)], pad_token_id)
    return {"rows": rows, "prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "response_ids": response_ids, "response_mask": response_mask, "pad_token_id": pad_token_id}


def reference_logps(reference: PolicyModel, batch: dict[str, Any], loss_type: str) -> torch.Tensor:
    """(B, 2) reference log-probs, computed without a graph for the pairs that lack them, then kept."""
    rows = batch["rows"]
    missing = [i for i, r in enumerate(rows) if r.reference_logps is None]
    if missing:
        sub = collate_pairs_for_policy([rows[i] for i in missing], batch["pad_token_id"])
        device = next(reference.parameters()).device
        with torch.no_grad():
            logps = sequence_logps(reference, {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in sub.items()}, loss_type).float().cpu()
        for j, i in enumerate(missing):
            rows[i].reference_logps = logps[j]
    return torch.stack([r.reference_logps for r in rows])


def dpo_step(model: torch.nn.Module, batch: dict[str, Any], reference: PolicyModel, config: DPOConfig) -> tuple[torch.Tensor, dict]:
    reference_pairs = reference_logps(reference, batch, config.loss_type)
    logps = sequence_logps(model, batch, config.loss_type)
    reference_pairs = reference_pairs.to(logps.device)
    return dpo_loss(logps[:, 0], logps[:, 1], reference_pairs[:, 0], reference_pairs[:, 1], config.beta, config.loss_type, config.label_smoothing)


def train_dpo(config: DPOConfig) -> dict[str, Any]:
    engine = Engine(config, recipe="dpo")

    # 1. Data: every pair validated and split into prompt / response tokens.
    pairs = load_preference_pairs(config.data, config.train_split, config.data_seed, config.num_train)
    tokenizer, policy, reference = load_policy(config, with_reference=True)  # DPO's h needs π_ref
    examples = []
    for row, pair in enumerate(pairs, start=1):
        prompt_ids, chosen_ids = tokenize_prompt_response(tokenizer, pair.prompt, pair.chosen)
        _, rejected_ids = tokenize_prompt_response(tokenizer, pair.prompt, pair.rejected)
        if len(prompt_ids) + max(len(chosen_ids), len(rejected_ids)) > config.max_length:
            raise DataError(f"{config.data} ({config.train_split}): row {row}: prompt + response is longer than max_length={config.max_length}")
        examples.append(PairExample(prompt_ids, chosen_ids, rejected_ids))
    eval_prompts = load_prompts(config.data, config.eval_split, config.data_seed, config.num_eval) if config.num_eval else []
    gold = GoldJudge(config.data) if is_task(config.data) else None
    setup = PolicySetup(tokenizer, policy, reference, [], eval_prompts, None, gold)  # DPO learns from pairs, not a reward
    engine.start_run()

    # 2 + 3. The reference is frozen (a copy, or the LoRA policy with its adapter off); the held-out
    #        answers of the initial policy are the baseline of the final evaluation.
    engine.prepare(policy)
    result = start_policy_run(engine, setup, config)
    train_supervised(
        engine,
        examples,
        collate=lambda rows: collate_pairs_for_policy(rows, tokenizer.pad_token_id),
        loss_fn=lambda m, b: dpo_step(m, b, reference, config),
        count_tokens=lambda b: sum(r.num_tokens for r in b["rows"]),
        progress_keys=("train/loss", "train/reward_accuracy"),
    )

    # 4. Save the policy and evaluate it on the held-out prompts.
    return finish_policy_run(engine, setup, config, result)
