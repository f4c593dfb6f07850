"""The one preference interface every model and every consumer (RL, SPPO, evaluation) speaks.

    PreferenceModel.prob(prompts, responses_a, responses_b) -> Tensor[B]   # P(a ≻ b | x)
    PointwisePreferenceModel.score(prompts, responses)       -> Tensor[B]   # scalar reward
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import torch

from prefrl.data.records import Text

MODEL_CARD = "prefrl_model.json"


class PreferenceModel(ABC):
    """Anything that says how likely response a is preferred to response b for a prompt."""

    kind: str = "preference"
    # Score under bfloat16 autocast (models that run a network honour it; rules ignore it). A policy
    # recipe with bf16=true sets it on its reward model: scoring the rollout is then ~2× faster on
    # hardware with bf16 units, and it matches how the reward model was trained (bf16 autocast).
    autocast_bf16: bool = False

    @abstractmethod
    def prob(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> torch.Tensor:
        """(B,) P(a_i ≻ b_i | x_i) in [0, 1]."""

    @property
    def is_pointwise(self) -> bool:
        return isinstance(self, PointwisePreferenceModel)


class PointwisePreferenceModel(PreferenceModel):
    """A preference model with a scalar score per response (usable as an RL reward)."""

    @abstractmethod
    def score(self, prompts: Sequence[Text], responses: Sequence[Text]) -> torch.Tensor:
        """(B,) score of each response."""

    def prob(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> torch.Tensor:
        """Bradley–Terry link: σ(s(x, a) − s(x, b)); both sides scored in one batched call."""
        scores = self.score(list(prompts) * 2, list(responses_a) + list(responses_b))
        count = len(prompts)
        return torch.sigmoid(scores[:count] - scores[count:])


def write_model_card(directory: str | Path, kind: str, **details: object) -> None:
    """`prefrl_model.json` tells `load_preference_model` which class reads the directory."""
    Path(directory, MODEL_CARD).write_text(json.dumps({"kind": kind, **details}, indent=2))


def read_model_card(directory: str | Path) -> dict:
    return json.loads(Path(directory, MODEL_CARD).read_text())
