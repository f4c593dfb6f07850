"""Small statistics for reports: intervals and calibration."""

from __future__ import annotations

import math

import torch


def wilson_interval(successes: float, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (better than the normal one near 0 and 1)."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half_width), min(1.0, centre + half_width))


def brier_score(probabilities: torch.Tensor, outcomes: torch.Tensor) -> float:
    """mean (p − o)², o ∈ {0, 1}: 0 is perfect, 0.25 is a constant ½."""
    return float(((probabilities - outcomes) ** 2).mean())


def expected_calibration_error(probabilities: torch.Tensor, outcomes: torch.Tensor, bins: int = 10) -> float:
    """Σ_b (n_b / N) |mean(p in b) − mean(o in b)| over equal-width bins of p."""
    edges = torch.linspace(0, 1, bins + 1)
    bin_index = torch.clamp(torch.bucketize(probabilities, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = bin_index == b
        if members.any():
            error += float(members.float().mean()) * abs(float(probabilities[members].mean()) - float(outcomes[members].mean()))
    return error
