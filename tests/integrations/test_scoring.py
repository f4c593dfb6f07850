"""prefrl.integrations.scoring: one reward rule for serve and the TRL adapter."""

from __future__ import annotations

import pytest
import torch

from prefrl.integrations.scoring import AnchorRequiredError, ModelRewards
from prefrl.preference import GoldJudge
from prefrl.preference.base import PreferenceModel


class LengthPreference(PreferenceModel):
    """Pairwise only: P(a ≻ b) = len(a) / (len(a) + len(b)); records each call's row count."""

    kind = "length"

    def __init__(self):
        self.calls: list[int] = []

    def prob(self, prompts, responses_a, responses_b):
        self.calls.append(len(prompts))
        return torch.tensor([len(a) / (len(a) + len(b)) for a, b in zip(responses_a, responses_b)])


def test_pairwise_rewards_are_probabilities_against_the_anchor_in_chunks():
    model = LengthPreference()
    rewards = ModelRewards(model, batch_size=2).rewards(["x"] * 5, ["a", "bb", "ccc", "d", "ee"], ["aaa"] * 5)
    assert rewards == pytest.approx([1 / 4, 2 / 5, 3 / 6, 1 / 4, 2 / 5])
    assert model.calls == [2, 2, 1]  # chunks of batch_size rows, the last one short
    with pytest.raises(AnchorRequiredError, match="pairwise"):
        ModelRewards(model).rewards(["x"], ["a"])


def test_pointwise_rewards_are_scores_and_anchors_are_ignored():
    rewards = ModelRewards(GoldJudge("arithmetic"), batch_size=1)
    prompt = "What is 17 + 25?"
    assert rewards.rewards([prompt] * 2, ["The answer is 42.", "It is 32."], ["The answer is 32."] * 2) == [1.0, 0.0]
    assert rewards.probs([prompt], ["The answer is 42."], ["It is 32."]) == [1.0]
    assert rewards.rewards([], []) == []


def test_batch_size_must_be_positive_and_is_handed_to_the_model():
    with pytest.raises(ValueError):
        ModelRewards(GoldJudge("arithmetic"), batch_size=0)
    model = LengthPreference()
    model.batch_size = 32
    ModelRewards(model, batch_size=4)
    assert model.batch_size == 4
