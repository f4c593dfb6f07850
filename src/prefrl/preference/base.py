"""The one preference interface every model and every consumer (RL, SPPO, evaluation) speaks.

    PreferenceModel.prob(prompts, responses_a, responses_b) -> Tensor[B]   # P(a ≻ b | x)
    PointwisePreferenceModel.score(prompts, responses)       -> Tensor[B]   # scalar reward

A trained model records the row format it was trained on (``trained_format`` in its model card:
"standard" for plain strings, "conversational" for chat messages, "mixed"), and scoring rows of the
other format warns with a :class:`FormatMismatchWarning` that names both formats.  Since prefrl
renders both formats identically (see prefrl.data.templates) the scores do not change; the warning
is there because a model trained elsewhere, or data that differs in more than its format (a system
message, a different dialogue markup), can still score differently.
"""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Sequence

import torch

from prefrl.data.records import Text

MODEL_CARD = "prefrl_model.json"
#: The model-card key that records the row format a model was trained on.
TRAINED_FORMAT_KEY = "trained_format"
#: Row formats, by TRL's names: plain strings, or lists of chat messages.
ROW_FORMATS = ("standard", "conversational")


class FormatMismatchWarning(UserWarning):
    """A preference model is scoring rows of another format than the one it was trained on."""


def row_format(prompt: Any) -> str:
    """"conversational" for a list of chat messages, "standard" for a plain string."""
    return "conversational" if isinstance(prompt, list) else "standard"


def data_format(rows: Iterable[Any]) -> str | None:
    """The format of rows (pairs, prompt records, row dicts or bare prompts): "standard",
    "conversational", "mixed", or None when there are none."""
    formats = set()
    for row in rows:
        prompt = row.get("prompt") if isinstance(row, dict) else getattr(row, "prompt", row)
        formats.add(row_format(prompt))
    if not formats:
        return None
    return formats.pop() if len(formats) == 1 else "mixed"


class PreferenceModel(ABC):
    """Anything that says how likely response a is preferred to response b for a prompt."""

    kind: str = "preference"
    #: The row format the model was trained on ("standard", "conversational" or "mixed"); None when
    #: unknown (an untrained model, or a directory saved before formats were recorded).
    trained_format: str | None = None
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

    def check_format(self, prompts: Iterable[Any]) -> None:
        """Warn (FormatMismatchWarning) when the rows are in another format than the training rows."""
        if self.trained_format not in ROW_FORMATS:
            return
        seen = data_format(prompts)
        if seen is not None and seen != self.trained_format:
            warnings.warn(
                FormatMismatchWarning(
                    f"this {self.kind} model was trained on {self.trained_format} rows and is now scoring {seen} rows "
                    f"(standard = plain strings, conversational = chat messages); prefrl renders both through the "
                    "chat template alike, but compare scores across formats with care"
                ),
                stacklevel=3,
            )

    def card_details(self) -> dict[str, Any]:
        """What a saved model's card records besides its kind (the training format, when known)."""
        return {TRAINED_FORMAT_KEY: self.trained_format} if self.trained_format else {}


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
