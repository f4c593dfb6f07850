import math

import pytest
import torch

from prefrl.eval.stats import PairedOutcome, brier_score, expected_calibration_error, sign_test, sign_test_power, wilson_interval


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


def test_sign_test_hand_computed():
    # 23 fixed, 2 broken: 2·(C(25,0) + C(25,1) + C(25,2)) / 2^25 = 2·326 / 33,554,432
    assert math.isclose(sign_test(23, 2), 652 / 2**25, rel_tol=1e-12)
    assert math.isclose(sign_test(2, 23), 652 / 2**25, rel_tol=1e-12)  # two-sided: symmetric
    assert sign_test(5, 0) == 0.0625  # 2 · 1/32: five of five is not significant at 0.05
    assert sign_test(3, 3) == 1.0  # 2·42/64 > 1 is capped
    assert sign_test(0, 0) == 1.0  # nothing untied, nothing to test


def test_sign_test_power_hand_computed():
    # every untied item improves: 10 of 10 gives p = 2/1024 < 0.05 (power 1); 5 of 5 never can (p = 0.0625)
    assert sign_test_power(10, 1.0) == 1.0
    assert sign_test_power(5, 1.0) == 0.0
    # n = 6, q = 0.9: only 6:0 and 0:6 reach p = 2/64 < 0.05, so power = 0.9^6 + 0.1^6
    assert math.isclose(sign_test_power(6, 0.9), 0.9**6 + 0.1**6, rel_tol=1e-12)


def test_paired_outcome_counts_and_win_rate():
    before = [0, 0, 1, 1, 0, 0.5]
    after = [1, 0, 0, 1, 1, 0.5]
    outcome = PairedOutcome.from_scores(before, after)
    assert (outcome.improved, outcome.worsened, outcome.unchanged) == (2, 1, 3)
    assert outcome.win_rate == (2 + 1.5) / 6
    metrics = outcome.as_metrics("eval/")
    assert metrics["eval/fixed"] == 2 and metrics["eval/broken"] == 1 and metrics["eval/unchanged"] == 3
    assert metrics["eval/sign_test_p"] == 1.0  # 2 vs 1: 2·(1 + 3)/8 = 1
    assert metrics["eval/win_rate_ci_low"] < outcome.win_rate < metrics["eval/win_rate_ci_high"]
    with pytest.raises(ValueError):
        PairedOutcome.from_scores([0, 1], [1])
