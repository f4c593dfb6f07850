import math

import pytest
import torch

from prefrl.eval.stats import (
    PairedOutcome,
    brier_score,
    expected_calibration_error,
    items_for_power,
    paired_test_power,
    sign_test,
    sign_test_lower_critical,
    sign_test_power,
    wilson_interval,
)


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


def test_sign_test_lower_critical_hand_computed_and_consistent_with_the_test():
    # n = 6: 6:0 has p = 2/64 = 0.031 (rejects), 5:1 has 2·7/64 = 0.22; n = 5: 5:0 is 2/32 = 0.0625 (never rejects);
    # n = 10: 9:1 has 2·11/1024 = 0.021, 8:2 has 2·56/1024 = 0.109
    assert sign_test_lower_critical(6) == 0 and sign_test_lower_critical(5) == -1 and sign_test_lower_critical(10) == 1
    for n in range(0, 61):
        lower = sign_test_lower_critical(n)
        assert all((sign_test(w, n - w) < 0.05) == (w <= lower or w >= n - lower) for w in range(n + 1))


def test_paired_test_power_hand_computed():
    # every item discordant and every one favours A (q = 1): significant exactly from 6 items on
    assert paired_test_power(6, effect=1.0, discordance=1.0) == 1.0
    assert paired_test_power(5, effect=1.0, discordance=1.0) == 0.0
    assert items_for_power(1.0, 1.0) == 6
    # all discordant, q = ½ + 0.8/2 = 0.9: the sign test's power on 6 items, 0.9⁶ + 0.1⁶
    assert math.isclose(paired_test_power(6, effect=0.8, discordance=1.0), 0.9**6 + 0.1**6, rel_tol=1e-9)
    # half the items discordant, all of those favour A (q = 1): 6 items reject only when all 6 are
    # discordant (1/64); 7 items when 6 or 7 are (7/128 + 1/128)
    assert math.isclose(paired_test_power(6, effect=0.5, discordance=0.5), 1 / 64, rel_tol=1e-9)
    assert math.isclose(paired_test_power(7, effect=0.5, discordance=0.5), 8 / 128, rel_tol=1e-9)


def test_paired_test_power_mixes_the_sign_test_power_over_the_discordant_count():
    n, effect, discordance = 20, 0.1, 0.4
    q = 0.5 + effect / (2 * discordance)
    expected = sum(math.comb(n, k) * discordance**k * (1 - discordance) ** (n - k) * sign_test_power(k, q) for k in range(n + 1))
    assert math.isclose(paired_test_power(n, effect, discordance), expected, rel_tol=1e-9)
    # more items, more power; the first n reaching 0.8 does and the one before does not
    needed = items_for_power(0.2, 0.4)
    assert paired_test_power(needed, 0.2, 0.4) >= 0.8 > paired_test_power(needed - 1, 0.2, 0.4)
