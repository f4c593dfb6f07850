"""The thinking judge (GRPO (pair)) read in both orders."""

import math

import torch

from prefrl.data.records import PreferencePair
from prefrl.eval.preference import evaluate_preference
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.preference.thinking_judge import ThinkingJudge


def judge_with_verdicts(p_a_given_first):
    """A tiny judge whose P("A") after its analysis is set by hand from the response shown first."""
    judge = ThinkingJudge(load_causal_lm("tiny"), load_tokenizer("tiny"))
    judge.first_verdict_probs = lambda prompts, firsts, seconds: torch.tensor([p_a_given_first(f) for f in firsts])
    return judge


def test_order_probs_are_a_shown_first_and_a_shown_second():
    judge = judge_with_verdicts(lambda first: 0.9 if first == "good" else 0.3)
    a_first, a_second = judge.order_probs(["q"], ["good"], ["bad"])
    # P(A | good, bad) = 0.9; shown second, good wins when the judge says B: 1 − P(A | bad, good) = 0.7
    assert torch.allclose(a_first, torch.tensor([0.9])) and torch.allclose(a_second, torch.tensor([0.7]))
    assert torch.allclose(judge.prob(["q"], ["good"], ["bad"]), torch.tensor([0.8]))


def test_a_judge_that_always_says_a_is_position_inconsistent():
    pairs = [PreferencePair(prompt="q", chosen="good", rejected="bad")] * 2
    assert math.isclose(evaluate_preference(judge_with_verdicts(lambda first: 0.9 if first == "good" else 0.3), pairs)["position_consistency"], 1.0)
    always_a = evaluate_preference(judge_with_verdicts(lambda first: 0.8), pairs)
    assert math.isclose(always_a["position_consistency"], 0.0) and math.isclose(always_a["accuracy"], 0.5)
