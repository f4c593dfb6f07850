"""Record what a reward source returned during a run, to compare with an independent computation."""

from __future__ import annotations

import pytest
import torch

from prefrl.rewards import RewardRows


def record_scores(monkeypatch: pytest.MonkeyPatch, source_class: type) -> list[tuple[RewardRows, torch.Tensor]]:
    """Every `source_class.score(rows)` call from now on appends (rows, scores) to the returned list."""
    scored: list[tuple[RewardRows, torch.Tensor]] = []
    original_score = source_class.score

    def recording_score(self, rows):
        scores = original_score(self, rows)
        scored.append((rows, scores))
        return scores

    monkeypatch.setattr(source_class, "score", recording_score)
    return scored
