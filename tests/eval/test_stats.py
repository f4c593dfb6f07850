import math

import torch

from prefrl.eval.stats import brier_score, expected_calibration_error, wilson_interval


def test_wilson_interval_hand_computed():
    # p = 0.8, n = 100, z = 1.96: centre = (0.8 + 0.019208)/1.038416 = 0.788906,
    # half = 1.96·sqrt(0.0016 + 0.00009604)/1.038416 = 0.077738
    low, high = wilson_interval(80, 100)
    assert math.isclose(low, 0.711171, abs_tol=1e-5) and math.isclose(high, 0.866643, abs_tol=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low < 1.0


def test_brier_and_ece_hand_computed():
    probabilities = torch.tensor([0.9, 0.9, 0.2, 0.2])
    outcomes = torch.tensor([1.0, 0.0, 0.0, 0.0])
    # Brier: (0.01 + 0.81 + 0.04 + 0.04) / 4 = 0.225
    assert math.isclose(brier_score(probabilities, outcomes), 0.225, rel_tol=1e-6)
    # bins: {0.9, 0.9} mean p 0.9 vs outcome 0.5 → 0.4·½; {0.2, 0.2} vs 0 → 0.2·½; ECE 0.3
    assert math.isclose(expected_calibration_error(probabilities, outcomes), 0.3, rel_tol=1e-6)


def test_perfectly_calibrated_is_zero():
    probabilities = torch.tensor([0.5, 0.5, 1.0])
    outcomes = torch.tensor([1.0, 0.0, 1.0])
    assert expected_calibration_error(probabilities, outcomes) < 1e-7
