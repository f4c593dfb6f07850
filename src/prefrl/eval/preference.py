"""Preference accuracy (with a 95% interval) and calibration of P(chosen ≻ rejected)."""

from __future__ import annotations

from typing import Sequence

import torch

from prefrl.data.records import PreferencePair
from prefrl.eval.stats import brier_score, expected_calibration_error, wilson_interval
from prefrl.preference.base import PreferenceModel


def evaluate_preference(model: PreferenceModel, pairs: Sequence[PreferencePair], batch_size: int = 64) -> dict[str, float]:
    """Accuracy = fraction of pairs with P(chosen ≻ rejected) > ½ (a tie counts ½), its Wilson
    interval, the Brier score and expected calibration error (10 bins) of P(chosen ≻ rejected)."""
    probabilities, consistent, first_verdict = [], [], []
    reads_both_orders = hasattr(model, "order_probs")  # pairwise judges: report position consistency
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        args = ([p.prompt for p in chunk], [p.chosen for p in chunk], [p.rejected for p in chunk])
        if reads_both_orders:
            chosen_first, chosen_second = model.order_probs(*args)
            probabilities.append(0.5 * (chosen_first + chosen_second))
            # the verdict survives swapping A and B
            consistent.append(((chosen_first > 0.5) == (chosen_second > 0.5)).float())
            # P(verdict "A") in either order: ½ for a judge with no preference for the first position
            first_verdict.append(torch.cat([chosen_first, 1 - chosen_second]).float())
        else:
            probabilities.append(model.prob(*args).float().cpu())
    prob = torch.cat(probabilities)
    correct = (prob > 0.5).float() + 0.5 * (prob == 0.5).float()
    low, high = wilson_interval(float(correct.sum()), len(pairs))
    # Calibration needs both outcomes: each pair read in both orders, P(c ≻ r) with label 1 and
    # 1 − P(c ≻ r) with label 0 (a model saying 0.7 should be right 70% of the time).
    both_orders = torch.cat([prob, 1 - prob])
    labels = torch.cat([torch.ones_like(prob), torch.zeros_like(prob)])
    return {
        "accuracy": float(correct.mean()),
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "brier": brier_score(both_orders, labels),
        "ece": expected_calibration_error(both_orders, labels),
        "mean_prob_chosen": float(prob.mean()),
        "num_pairs": len(pairs),
        **({"position_consistency": float(torch.cat(consistent).mean()), "prob_first_verdict": float(torch.cat(first_verdict).mean())} if consistent else {}),
    }
