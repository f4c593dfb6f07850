"""One rule for turning any prefrl preference model into rewards, shared by `prefrl serve` and the
TRL adapter:

    pointwise model (BT, dialog GPM, gold judge):  reward(x, y) = score(x, y)
    pairwise model (pairwise judge, thinking judge): reward(x, y) = P(y ≻ anchor | x)

A pairwise model has no score of its own, so it needs an anchor per row (the dataset's reference
response, as pairwise PPO uses it); without one it raises AnchorRequiredError, which the server
answers with 422 and the adapter raises to the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from prefrl.data.records import Text
from prefrl.errors import PrefrlError
from prefrl.preference.base import PointwisePreferenceModel, PreferenceModel


class AnchorRequiredError(PrefrlError):
    """A pairwise preference model was asked for rewards without an anchor response per row."""


@dataclass
class ModelRewards:
    """Rewards and preference probabilities from one preference model, computed in chunks of
    `batch_size` rows (so a large request never holds more than one chunk's activations)."""

    model: PreferenceModel
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, got {self.batch_size}")
        # The network models also batch inside score/prob; one size for both keeps a chunk one forward.
        if hasattr(self.model, "batch_size"):
            self.model.batch_size = self.batch_size

    @property
    def is_pointwise(self) -> bool:
        return isinstance(self.model, PointwisePreferenceModel)

    def rewards(self, prompts: Sequence[Text], responses: Sequence[Text], anchors: Sequence[Text] | None = None) -> list[float]:
        """The reward of each response (see the module docstring); `anchors` is read only by a
        pairwise model."""
        if self.is_pointwise:
            return self._chunked(lambda start, end: self.model.score(prompts[start:end], responses[start:end]), len(prompts))
        if anchors is None:
            raise AnchorRequiredError(
                f"this {self.model.kind} model is pairwise (it has no score of its own): its reward is P(response ≻ anchor | prompt), "
                "so give an anchor response per row"
            )
        return self.probs(prompts, responses, anchors)

    def probs(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> list[float]:
        """P(a_i ≻ b_i | x_i) for each row."""
        return self._chunked(lambda start, end: self.model.prob(prompts[start:end], responses_a[start:end], responses_b[start:end]), len(prompts))

    def _chunked(self, compute, count: int) -> list[float]:
        values: list[float] = []
        with torch.no_grad():
            for start in range(0, count, self.batch_size):
                values += torch.as_tensor(compute(start, min(count, start + self.batch_size))).float().flatten().tolist()
        if len(values) != count:
            raise RuntimeError(f"the {self.model.kind} model returned {len(values)} values for {count} rows")
        return values
