"""A synthetic reward for RL loop tests: the share of digits in the response (the tiny model's
character tokenizer makes that a per-token property it can learn in a few steps)."""

import torch

from prefrl.preference.base import PointwisePreferenceModel
from prefrl.rewards import PreferenceModelReward


class DigitShare(PointwisePreferenceModel):
    kind = "digit-share"

    def score(self, prompts, responses):
        return torch.tensor([sum(c.isdigit() for c in r) / max(len(r), 1) for r in responses], dtype=torch.float32)


class ResponseLength(PointwisePreferenceModel):
    kind = "response-length"

    def score(self, prompts, responses):
        return torch.tensor([float(len(r)) for r in responses])


def with_reward(monkeypatch, module, reward):
    """Make `module.setup_policy` return its normal set-up with `reward` as the proxy."""
    original = module.setup_policy

    def patched(config, *args, **kwargs):
        setup = original(config, *args, **kwargs)
        setup.reward = PreferenceModelReward(reward)
        return setup

    monkeypatch.setattr(module, "setup_policy", patched)
