"""The held-out report of a policy's answers: per-kind accuracy, paired counts, length, repetition."""

import math

import pytest
import torch

from prefrl.data.records import PromptRecord
from prefrl.eval.policy import distinct_bigram_fraction, group_pair_agreement, held_out_report


def test_distinct_bigram_fraction_hand_computed():
    assert distinct_bigram_fraction("the cat sat on the mat") == 1.0  # 5 bigrams, all different
    # units "basically , basically , basically , basically ,": 7 bigrams, two distinct
    assert math.isclose(distinct_bigram_fraction("Basically, basically, basically, basically,"), 2 / 7)
    # a run of one emoji is one space-free "word" but four units: 3 bigrams, one distinct
    assert math.isclose(distinct_bigram_fraction("🌈🌈🌈🌈"), 1 / 3)
    assert math.isclose(distinct_bigram_fraction("Hi, you."), 1.0)  # hi , you . : 3 bigrams, all different
    assert distinct_bigram_fraction("two words") == 1.0


def test_report_per_kind_and_paired_with_the_initial_answers():
    prompts = [PromptRecord("a", extra={"kind": "min_words"}), PromptRecord("b", extra={"kind": "min_words"}), PromptRecord("c", extra={"kind": "uppercase"})]
    report = held_out_report(prompts, ["x y z", "x y", "A B"], [3, 2, 1], gold_scores=[1.0, 0.0, 1.0], baseline_gold_scores=[0.0, 1.0, 1.0])
    assert report["gold_reward"] == pytest.approx(2 / 3)
    assert report["gold_reward/min_words"] == 0.5 and report["gold_reward/uppercase"] == 1.0
    assert report["response_length"] == 2.0 and report["response_length/min_words"] == 2.5 and report["response_length/uppercase"] == 1.0
    assert (report["gold_vs_initial/fixed"], report["gold_vs_initial/broken"], report["gold_vs_initial/unchanged"]) == (1, 1, 1)
    assert report["gold_vs_initial/sign_test_p"] == 1.0
    assert report["gold_vs_initial/win_rate"] == 0.5


def test_report_without_kinds_or_gold_has_no_per_kind_or_paired_keys():
    report = held_out_report([PromptRecord("a"), PromptRecord("b")], ["x", "y"], [1, 1], gold_scores=None)
    assert set(report) == {"response_length", "distinct_bigrams"}


def test_group_pair_agreement_hand_computed():
    # Group 1 (K = 3): gold 1, 0, 1 separates pairs (0,1) and (2,1); the proxy 0.9, 0.2, 0.1 orders
    # (0,1) as gold does and (2,1) the other way: 1 of 2. Group 2: gold 0, 1, 1 separates (1,0) and
    # (2,0); the proxy ties (1,0) (½) and orders (2,0) right (1): 1.5 of 2. Group 3: gold all 0, no pair.
    proxy = torch.tensor([0.9, 0.2, 0.1, 0.5, 0.5, 0.7, 1.0, 2.0, 3.0])
    gold = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert group_pair_agreement(proxy, gold, 3) == (2.5, 4)


def test_group_pair_agreement_is_one_for_the_gold_itself_and_zero_for_its_negation():
    gold = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    assert group_pair_agreement(gold, gold, 4) == (8.0, 8)
    assert group_pair_agreement(-gold, gold, 4) == (0.0, 8)
