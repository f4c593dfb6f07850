"""GRPO (pair) — `prefrl train gpm-grpo`: the generative-preference-model baseline of paper 000.

The model sees [x, A, B] (the labelled winner at A or B at random), thinks, and ends with
"Verdict: A|B"; the reward is 1 when the verdict names the labelled winner, else 0; the update is
GRPO (group advantages and the clipped loss of grpo.py, unchanged). The trained model is a
`ThinkingJudge` preference model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from prefrl.algorithms.grpo import GroupPolicyConfig, GroupScalingSection, train_group_policy
from prefrl.config import option
from prefrl.data.loaders import load_preference_pairs
from prefrl.data.records import PreferencePair, PromptRecord, Text, last_content
from prefrl.data.templates import thinking_judge_messages
from prefrl.algorithms.policy_setup import PolicySetup, load_policy
from prefrl.preference.base import PointwisePreferenceModel
from prefrl.preference.thinking_judge import KIND, parse_verdict
from prefrl.rewards import PreferenceModelReward


@dataclass
class GPMGRPOConfig(GroupScalingSection, GroupPolicyConfig):
    """GRPO (pair): a thinking pairwise judge rewarded for naming the labelled winner."""

    output_dir: str = option("runs/gpm-grpo", "Run directory.")
    kl_coef: float = option(0.0, "β of the KL to the reference (0 skips the reference model).")


class VerdictReward(PointwisePreferenceModel):
    """1 when the response's final verdict names the labelled winner of its judging prompt, else 0."""

    kind = "verdict"

    def __init__(self, records: Sequence[PromptRecord]):
        self.labels = {last_content(r.prompt): r.extra["label"] for r in records}

    def score(self, prompts: Sequence[Text], responses: Sequence[Text]) -> torch.Tensor:
        return torch.tensor([float(parse_verdict(last_content(r)) == self.labels[last_content(p)]) for p, r in zip(prompts, responses)])


def judging_prompts(pairs: Sequence[PreferencePair], seed: int) -> list[PromptRecord]:
    """One judging prompt per pair, the chosen response at A or B by a seeded coin."""
    coin = random.Random(seed)
    records = []
    for pair in pairs:
        chosen_first = coin.random() < 0.5
        first, second = (pair.chosen, pair.rejected) if chosen_first else (pair.rejected, pair.chosen)
        label = "A" if chosen_first else "B"
        records.append(PromptRecord(thinking_judge_messages(pair.prompt, first, second), reference=f"Verdict: {label}", extra={"label": label}))
    return records


def train_gpm_grpo(config: GPMGRPOConfig) -> dict[str, Any]:
    train = judging_prompts(load_preference_pairs(config.data, config.train_split, config.data_seed, config.num_train), config.seed)
    evaluation = judging_prompts(load_preference_pairs(config.data, config.eval_split, config.data_seed, config.num_eval), config.seed + 1) if config.num_eval else []
    reward = VerdictReward(train + evaluation)
    tokenizer, policy, reference = load_policy(config, config.loads_reference())
    # The verdict reward is both the training signal and the "gold" the evaluation reports.
    setup = PolicySetup(tokenizer, policy, reference, train, evaluation, reward=PreferenceModelReward(reward), gold=reward, proxy_is_gold=True)  # type: ignore[arg-type]
    return train_group_policy(config, recipe="gpm-grpo", setup=setup, model_kind=KIND)
