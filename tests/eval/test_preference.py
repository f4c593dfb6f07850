"""evaluate_preference on stand-in models whose probabilities are chosen by hand."""

import math

import torch

from prefrl.data.records import PreferencePair
from prefrl.eval.preference import evaluate_preference

PAIRS = [PreferencePair(prompt=f"q{i}", chosen="c", rejected="r") for i in range(4)]


class FixedProbabilities:
    def __init__(self, values):
        self.values = torch.tensor(values)

    def prob(self, prompts, chosen, rejected):
        return self.values[: len(prompts)]


class FixedOrders:
    """A judge read in both orders: P(chosen ≻ rejected) with chosen shown first, and second."""

    def __init__(self, first, second):
        self.first, self.second = torch.tensor(first), torch.tensor(second)

    def order_probs(self, prompts, chosen, rejected):
        return self.first[: len(prompts)], self.second[: len(prompts)]


def test_accuracy_counts_a_tie_as_half_and_calibration_reads_both_orders():
    result = evaluate_preference(FixedProbabilities([0.9, 0.5, 0.2, 0.7]), PAIRS)
    # correct: 1 + ½ + 0 + 1 = 2.5 of 4
    assert math.isclose(result["accuracy"], 0.625)
    # Brier over (p, label 1) and (1 − p, label 0) is the mean of (1 − p)²: (0.01 + 0.25 + 0.64 + 0.09) / 4
    assert math.isclose(result["brier"], 0.2475, rel_tol=1e-6)
    # 8 points: p ∈ {0.9, 0.5, 0.2, 0.7} labelled 1, {0.1, 0.5, 0.8, 0.3} labelled 0. Bins (width 0.1):
    # 0.1→0 (|0.1−0|), 0.2→1 (0.8), 0.3→0 (0.3), 0.5,0.5→½ (0), 0.7→1 (0.3), 0.8→0 (0.8), 0.9→1 (0.1):
    # ECE = (0.1 + 0.8 + 0.3 + 0 + 0.3 + 0.8 + 0.1) / 8 = 0.3
    assert math.isclose(result["ece"], 0.3, rel_tol=1e-5)
    assert math.isclose(result["mean_prob_chosen"], 0.575, rel_tol=1e-6)
    assert "position_consistency" not in result


def test_a_judge_read_in_both_orders_reports_position_consistency():
    # pair 0: 0.8 / 0.6 agree; pair 1: 0.7 / 0.2 disagree (the judge prefers position A); pair 2:
    # 0.4 / 0.3 agree (both wrong); pair 3: 0.9 / 0.4 disagree
    judge = FixedOrders([0.8, 0.7, 0.4, 0.9], [0.6, 0.2, 0.3, 0.4])
    result = evaluate_preference(judge, PAIRS)
    assert math.isclose(result["position_consistency"], 0.5)
    # P(verdict "A"): chosen shown first 0.8, 0.7, 0.4, 0.9; rejected shown first 1 − second = 0.4, 0.8, 0.7, 0.6
    assert math.isclose(result["prob_first_verdict"], (0.8 + 0.7 + 0.4 + 0.9 + 0.4 + 0.8 + 0.7 + 0.6) / 8, rel_tol=1e-6)
    # the probability is the two-order mean: 0.7, 0.45, 0.35, 0.65 -> two pairs right
    assert math.isclose(result["accuracy"], 0.5)
    assert math.isclose(result["mean_prob_chosen"], (0.7 + 0.45 + 0.35 + 0.65) / 4, rel_tol=1e-6)


def test_batches_do_not_change_the_result():
    class ByPrompt(FixedOrders):  # looks each pair up by its prompt, so any batching reads the same values
        def order_probs(self, prompts, chosen, rejected):
            index = [int(p[1:]) for p in prompts]
            return self.first[index], self.second[index]

    judge = ByPrompt([0.8, 0.7, 0.4, 0.9], [0.6, 0.2, 0.3, 0.4])
    assert evaluate_preference(judge, PAIRS, batch_size=4) == evaluate_preference(judge, PAIRS, batch_size=3)
