"""A built-in task's gold judge as a preference model: rule-based score, P(a ≻ b) ∈ {1, 0, ½}."""

from __future__ import annotations

from typing import Sequence

import torch

from prefrl.data.records import Text
from prefrl.data.tasks import get_task
from prefrl.preference.base import PointwisePreferenceModel


class GoldJudge(PointwisePreferenceModel):
    kind = "gold"

    def __init__(self, task_name: str):
        self.task = get_task(task_name)

    def score(self, prompts: Sequence[Text], responses: Sequence[Text]) -> torch.Tensor:
        return torch.tensor([self.task.judge(p, r) for p, r in zip(prompts, responses)], dtype=torch.float32)

    def prob(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> torch.Tensor:
        """1 if a scores higher, 0 if lower, ½ on a tie (not a sigmoid: the rule has no scale)."""
        difference = self.score(prompts, responses_a) - self.score(prompts, responses_b)
        return 0.5 + 0.5 * torch.sign(difference)
