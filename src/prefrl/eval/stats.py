"""Small statistics for reports: intervals, calibration, and the paired sign test."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

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


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test: the probability, under "each untied item is a fair coin", of a
    split at least as uneven as `wins`:`losses`. Ties carry no sign and are left out, as usual.

        p = min(1, 2 · Σ_{i ≤ min(w, l)} C(n, i) / 2ⁿ),   n = w + l
    """
    untied = wins + losses
    if untied == 0:
        return 1.0
    smaller = min(wins, losses)
    tail = sum(math.comb(untied, i) for i in range(smaller + 1)) / 2**untied
    return min(1.0, 2.0 * tail)


def sign_test_power(untied: int, improve_fraction: float, alpha: float = 0.05) -> float:
    """Power of the two-sided exact sign test on `untied` items when a fraction `improve_fraction`
    of them improve: P(p-value < alpha) under Binomial(untied, improve_fraction)."""
    return sum(
        math.comb(untied, wins) * improve_fraction**wins * (1 - improve_fraction) ** (untied - wins)
        for wins in range(untied + 1)
        if sign_test(wins, untied - wins) < alpha
    )


def _binomial_log_pmf(n: int, k: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def sign_test_lower_critical(untied: int, alpha: float = 0.05) -> int:
    """The largest w with sign_test(w, untied − w) < alpha (−1 when no split of `untied` items is
    significant): the two-sided exact test rejects when wins ≤ w or wins ≥ untied − w."""
    tail, critical = 0.0, -1
    for wins in range(untied // 2 + 1):
        tail += math.exp(_binomial_log_pmf(untied, wins, 0.5))
        if 2 * tail >= alpha:
            break
        critical = wins
    return critical


def paired_test_power(items: int, effect: float, discordance: float, alpha: float = 0.05) -> float:
    """Power of the exact sign test (McNemar's exact test is the same test on the discordant pairs)
    comparing two arms on the same `items` binary outcomes, when a fraction `discordance` of items
    differ between the arms and arm A's success rate exceeds B's by `effect`.

    The number of discordant items is K ~ Binomial(items, discordance); each favours A with
    probability q = ½ + effect / (2 · discordance) (so that P(A only) − P(B only) = effect), and

        power = Σ_k P(K = k) · P(W ≤ k − c_k or W ≥ c_k),   W ~ Binomial(k, q),

    c_k the critical count of the two-sided test at `alpha` (`sign_test_lower_critical`).
    """
    if not 0 < discordance <= 1 or abs(effect) > discordance:
        raise ValueError(f"paired_test_power needs 0 < discordance <= 1 and |effect| <= discordance; got effect={effect}, discordance={discordance}")
    q = 0.5 + effect / (2 * discordance)
    power = 0.0
    for discordant in range(items + 1):
        weight = math.exp(_binomial_log_pmf(items, discordant, discordance))
        if weight < 1e-15:
            continue
        lower = sign_test_lower_critical(discordant, alpha)
        if lower < 0:
            continue
        reject = sum(math.exp(_binomial_log_pmf(discordant, w, q)) for w in range(lower + 1))
        reject += sum(math.exp(_binomial_log_pmf(discordant, w, q)) for w in range(discordant - lower, discordant + 1))
        power += weight * reject
    return power


def items_for_power(effect: float, discordance: float, power: float = 0.8, alpha: float = 0.05, max_items: int = 20000) -> int | None:
    """The smallest number of paired items at which `paired_test_power` reaches `power` (None if
    not by `max_items`). Exact tests' power is saw-toothed in n; this is the first n that reaches it."""
    high = 8
    while paired_test_power(high, effect, discordance, alpha) < power:
        if high >= max_items:
            return None
        high = min(2 * high, max_items)
    low = high // 2
    while low + 1 < high:  # power rises with n apart from the saw-tooth; bisect, then step back over it
        middle = (low + high) // 2
        if paired_test_power(middle, effect, discordance, alpha) >= power:
            high = middle
        else:
            low = middle
    while high > 1 and paired_test_power(high - 1, effect, discordance, alpha) >= power:
        high -= 1
    return high


@dataclass(frozen=True)
class PairedOutcome:
    """Per-item comparison of an "after" score with a "before" score on the same items (prompts):
    `improved` items scored higher after (a policy *fixed* the prompt), `worsened` lower (*broke*
    it), `unchanged` the same."""

    improved: int
    worsened: int
    unchanged: int

    @classmethod
    def from_scores(cls, before: Sequence[float], after: Sequence[float]) -> "PairedOutcome":
        if len(before) != len(after):
            raise ValueError(f"paired scores need the same items: {len(before)} before, {len(after)} after")
        improved = sum(a > b for a, b in zip(after, before))
        worsened = sum(a < b for a, b in zip(after, before))
        return cls(improved, worsened, len(before) - improved - worsened)

    @property
    def total(self) -> int:
        return self.improved + self.worsened + self.unchanged

    @property
    def p_value(self) -> float:
        return sign_test(self.improved, self.worsened)

    @property
    def win_rate(self) -> float:
        """(improved + ½ unchanged) / n: ½ when nothing moved."""
        return (self.improved + 0.5 * self.unchanged) / self.total if self.total else 0.5

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        low, high = wilson_interval(self.improved + 0.5 * self.unchanged, self.total)
        return {
            f"{prefix}fixed": self.improved,
            f"{prefix}broken": self.worsened,
            f"{prefix}unchanged": self.unchanged,
            f"{prefix}sign_test_p": self.p_value,
            f"{prefix}win_rate": self.win_rate,
            f"{prefix}win_rate_ci_low": low,
            f"{prefix}win_rate_ci_high": high,
        }

    def describe(self) -> str:
        return f"{self.improved} fixed, {self.worsened} broken, {self.unchanged} unchanged; sign test p = {format_p(self.p_value)}"


def format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"
