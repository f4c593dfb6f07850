"""Hand-computed values for the DWRL weights, advantages and losses.

The running example is one pair with two thoughts per response:
    π(a|o⁺) = [0.1, 0.3]  →  p̂⁺ = 0.2,  ω̃⁺ = [0.25, 0.75]
    π(a|o⁻) = [0.5, 0.7]  →  p̂⁻ = 0.6,  ω̃⁻ = [5/12, 7/12]
    w = 0.6 / (0.2 + 0.6) = 0.75
"""

import math

import pytest
import torch

from prefrl.objectives.dwrl import (
    dwrl_scoring_loss,
    dwrl_surrogate_loss,
    dwrl_thought_advantages,
    dwrl_thought_loss,
    group_score_entropy,
    group_scores,
    misalignment_weight,
)

POS = [0.1, 0.3]
NEG = [0.5, 0.7]


def _logprobs(probs, requires_grad=False):
    return torch.tensor([probs], dtype=torch.float64).log().requires_grad_(requires_grad)


def _close(actual, expected, tol=1e-9):
    return torch.allclose(actual, torch.as_tensor(expected, dtype=actual.dtype), rtol=tol, atol=tol)


def test_misalignment_weight_hand_computed():
    w = misalignment_weight(_logprobs(POS), _logprobs(NEG))
    assert w.shape == (1,)
    assert _close(w, [0.75])


def test_misalignment_weight_batched_and_symmetric():
    pos = torch.tensor([POS, NEG], dtype=torch.float64).log()
    neg = torch.tensor([NEG, POS], dtype=torch.float64).log()
    # swapping the roles turns w into 1 − w: 0.2 / 0.8 = 0.25
    assert _close(misalignment_weight(pos, neg), [0.75, 0.25])


def test_misalignment_weight_is_stable_for_tiny_probabilities():
    # π(a|o) ~ e^−800 underflows in probability space; p̂⁺ = e^−800, p̂⁻ = 3 e^−800 → w = 0.75
    pos = torch.tensor([[-800.0, -800.0]], dtype=torch.float64)
    neg = torch.tensor([[-800.0 + math.log(2.0), -800.0 + math.log(4.0)]], dtype=torch.float64)
    assert _close(misalignment_weight(pos, neg), [0.75])


def test_misalignment_weight_ablation_gives_ones():
    pos = torch.randn(3, 4, dtype=torch.float64)
    neg = torch.randn(3, 4, dtype=torch.float64)
    w = misalignment_weight(pos, neg, use_weight=False)
    assert w.dtype == torch.float64 and torch.equal(w, torch.ones(3, dtype=torch.float64))


def test_misalignment_weight_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="misalignment_weight"):
        misalignment_weight(torch.zeros(2, 3), torch.zeros(2, 4))


def test_group_scores_hand_computed():
    assert _close(group_scores(_logprobs(POS)), [[0.25, 0.75]])
    assert _close(group_scores(_logprobs(NEG)), [[5 / 12, 7 / 12]])


def test_group_score_entropy():
    # −(0.25 log 0.25 + 0.75 log 0.75) = 0.562335; uniform → log n; one-hot → 0
    scores = torch.tensor([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    assert _close(group_score_entropy(scores), [0.5623351446188083, math.log(2.0), 0.0])


def test_thought_advantages_with_and_without_baseline():
    w = torch.tensor([0.75], dtype=torch.float64)
    scores_pos = torch.tensor([[0.25, 0.75]], dtype=torch.float64)
    scores_neg = torch.tensor([[5 / 12, 7 / 12]], dtype=torch.float64)
    # baseline b = 1/2: +0.75 (ω̃⁺ − 0.5), −0.75 (ω̃⁻ − 0.5)
    adv_pos, adv_neg = dwrl_thought_advantages(w, scores_pos, scores_neg)
    assert _close(adv_pos, [[-0.1875, 0.1875]])
    assert _close(adv_neg, [[0.0625, -0.0625]])
    # raw: +0.75 ω̃⁺, −0.75 ω̃⁻
    adv_pos, adv_neg = dwrl_thought_advantages(w, scores_pos, scores_neg, subtract_baseline=False)
    assert _close(adv_pos, [[0.1875, 0.5625]])
    assert _close(adv_neg, [[-0.3125, -0.4375]])


def test_scoring_loss_hand_computed_and_stats():
    pos, neg = _logprobs(POS), _logprobs(NEG)
    w, sp, sn = misalignment_weight(pos, neg), group_scores(pos), group_scores(neg)
    loss, stats = dwrl_scoring_loss(pos, neg, w, sp, sn)
    # Σ ω̃⁺ log π(a|o⁺) = 0.25 log 0.1 + 0.75 log 0.3 = −1.478626
    # Σ ω̃⁻ log π(a|o⁻) = 5/12 log 0.5 + 7/12 log 0.7 = −0.496872
    # loss = −0.75 (−1.478626 + 0.496872) = 0.736316
    assert math.isclose(loss.item(), 0.7363156254715444, rel_tol=1e-9)
    assert math.isclose(stats["p_pos"].item(), 0.2, rel_tol=1e-9)
    assert math.isclose(stats["p_neg"].item(), 0.6, rel_tol=1e-9)
    assert stats["accuracy"].item() == 0.0
    assert math.isclose(stats["weight"].item(), 0.75, rel_tol=1e-9)
    assert math.isclose(stats["score_entropy_pos"].item(), 0.5623351446188083, rel_tol=1e-9)


def test_scoring_loss_is_a_mean_over_pairs():
    # the example pair and its mirror image (w = 0.25, roles swapped)
    pos = torch.tensor([POS, NEG], dtype=torch.float64).log()
    neg = torch.tensor([NEG, POS], dtype=torch.float64).log()
    loss, stats = dwrl_scoring_loss(pos, neg, misalignment_weight(pos, neg), group_scores(pos), group_scores(neg))
    # pair 2: −0.25 (−0.496872 + 1.478626) = −0.245439
    expected = (0.7363156254715444 - 0.25 * (1.4786258764929636 - 0.4968717091975712)) / 2
    assert math.isclose(loss.item(), expected, rel_tol=1e-9)
    assert stats["accuracy"].item() == 0.5


def test_no_gradient_flows_through_weight_or_scores():
    pos, neg = _logprobs(POS, requires_grad=True), _logprobs(NEG, requires_grad=True)
    w, sp, sn = misalignment_weight(pos, neg), group_scores(pos), group_scores(neg)
    assert not w.requires_grad and not sp.requires_grad and not sn.requires_grad
    loss, _ = dwrl_scoring_loss(pos, neg, w, sp, sn)
    loss.backward()
    # with w and ω̃ constants: ∂L/∂log π(a|o⁺ᵢ) = −w ω̃⁺ᵢ, ∂L/∂log π(a|o⁻ᵢ) = +w ω̃⁻ᵢ
    assert _close(pos.grad, [[-0.1875, -0.5625]])
    assert _close(neg.grad, [[0.3125, 0.4375]])


def test_scoring_loss_detaches_weights_passed_with_grad():
    # even a weight that carries a graph is treated as a constant
    pos, neg = _logprobs(POS, requires_grad=True), _logprobs(NEG, requires_grad=True)
    w = torch.sigmoid(torch.logsumexp(neg, -1) - torch.logsumexp(pos, -1))
    loss, _ = dwrl_scoring_loss(pos, neg, w, torch.softmax(pos, -1), torch.softmax(neg, -1))
    loss.backward()
    assert _close(pos.grad, [[-0.1875, -0.5625]])


def test_surrogate_loss_adds_the_thought_term():
    pos, neg = _logprobs(POS, requires_grad=True), _logprobs(NEG, requires_grad=True)
    thought_pos = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    thought_neg = torch.tensor([[-3.0, -0.5]], dtype=torch.float64, requires_grad=True)
    w, sp, sn = misalignment_weight(pos, neg), group_scores(pos), group_scores(neg)
    loss, stats = dwrl_surrogate_loss(pos, neg, thought_pos, thought_neg, w, sp, sn)
    # thought term with b = 1/2: −(−0.1875·−1 + 0.1875·−2 + 0.0625·−3 − 0.0625·−0.5) = 0.34375
    assert math.isclose(stats["thought_loss"].item(), 0.34375, rel_tol=1e-9)
    assert math.isclose(stats["scoring_loss"].item(), 0.7363156254715444, rel_tol=1e-9)
    assert math.isclose(loss.item(), 0.7363156254715444 + 0.34375, rel_tol=1e-9)
    loss.backward()
    # ∂L/∂log π(oᵢ) = −Aᵢ; the answer log-probs get the scoring-step gradient only
    assert _close(thought_pos.grad, [[0.1875, -0.1875]])
    assert _close(thought_neg.grad, [[-0.0625, 0.0625]])
    assert _close(pos.grad, [[-0.1875, -0.5625]])


def test_surrogate_loss_without_baseline():
    pos, neg = _logprobs(POS), _logprobs(NEG)
    thought_pos = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    thought_neg = torch.tensor([[-3.0, -0.5]], dtype=torch.float64, requires_grad=True)
    w, sp, sn = misalignment_weight(pos, neg), group_scores(pos), group_scores(neg)
    loss, stats = dwrl_surrogate_loss(pos, neg, thought_pos, thought_neg, w, sp, sn, subtract_baseline=False)
    # −(0.1875·−1 + 0.5625·−2 − 0.3125·−3 − 0.4375·−0.5) = 0.15625
    assert math.isclose(stats["thought_loss"].item(), 0.15625, rel_tol=1e-9)
    loss.backward()
    assert _close(thought_pos.grad, [[-0.1875, -0.5625]])
    assert _close(thought_neg.grad, [[0.3125, 0.4375]])


def test_thought_loss_clips_one_ratio_per_thought():
    """ρᵢ = π(oᵢ)/π_old(oᵢ) of the whole thought. Thought 1: log ρ = 0.5, ρ = 1.6487 > 1.2, A = +0.5 →
    clipped term 1.2·0.5; thought 2: log ρ = −1, ρ = 0.3679 < 0.8, A = −0.25 → min(−0.0920, −0.2) = −0.2.
    Loss = −(0.6 − 0.2) / 1 pair = −0.4, both thoughts clipped (no gradient)."""
    old = torch.tensor([-1.5, -1.0])
    advantages = torch.tensor([0.5, -0.25])
    new = torch.tensor([-1.0, -2.0], requires_grad=True)
    loss, stats = dwrl_thought_loss(new, old, advantages, num_pairs=1, clip_eps=0.2)
    assert math.isclose(loss.item(), -0.4, rel_tol=1e-6)
    assert float(stats["clip_fraction"]) == 1.0
    loss.backward()
    assert torch.equal(new.grad, torch.zeros(2))
    # inside the clip range the gradient is −A·ρ/pairs per thought: ρ = e^{0.1}, e^{−0.1}; 2 pairs halve it
    new = torch.tensor([-1.4, -1.1], requires_grad=True)
    dwrl_thought_loss(new, old, advantages, num_pairs=2, clip_eps=0.2)[0].backward()
    torch.testing.assert_close(new.grad, torch.tensor([-0.5 * math.exp(0.1), 0.25 * math.exp(-0.1)]) / 2)


def test_thought_loss_is_the_clipped_sum_per_pair_written_out():
    """(1/B) Σᵢ max(−Aᵢρᵢ, −Aᵢ clip(ρᵢ, 1 − ε, 1 + ε)), computed directly, on random thoughts of 3
    pairs × 2 sides × 4 thoughts."""
    generator = torch.Generator().manual_seed(0)
    rows = 3 * 2 * 4
    new = torch.randn(rows, generator=generator, dtype=torch.float64) * 3
    old = new + 0.4 * torch.randn(rows, generator=generator, dtype=torch.float64)
    advantages = torch.randn(rows, generator=generator, dtype=torch.float64)
    loss, stats = dwrl_thought_loss(new, old, advantages, num_pairs=3, clip_eps=0.2)
    ratio = (new - old).exp()
    expected = torch.maximum(-advantages * ratio, -advantages * ratio.clamp(0.8, 1.2)).sum() / 3
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(stats["ratio_mean"], ratio.mean())


def test_thought_loss_at_ratio_one_has_the_surrogates_thought_gradient():
    """At ρ = 1 (π = π_old) the clipped loss's gradient equals that of the thought term of
    `dwrl_surrogate_loss`, −(1/B) Σ Aᵢ log π(oᵢ), with A from `dwrl_thought_advantages`."""
    answer_pos, answer_neg = _logprobs(POS), _logprobs(NEG)
    weight = misalignment_weight(answer_pos, answer_neg)
    scores_pos, scores_neg = group_scores(answer_pos), group_scores(answer_neg)
    adv_pos, adv_neg = dwrl_thought_advantages(weight, scores_pos, scores_neg)
    thoughts = torch.tensor([[-3.0, -4.0], [-2.0, -5.0]], dtype=torch.float64, requires_grad=True)  # rows: y⁺, y⁻
    loss, _ = dwrl_thought_loss(thoughts.reshape(-1), thoughts.detach().reshape(-1), torch.cat([adv_pos[0], adv_neg[0]]), num_pairs=1, clip_eps=0.2)
    (grad,) = torch.autograd.grad(loss, thoughts)
    # hand: w = 0.75; A⁺ = 0.75·(ω̃⁺ − ½) = [−0.1875, 0.1875]; A⁻ = −0.75·(ω̃⁻ − ½) = [0.0625, −0.0625]
    torch.testing.assert_close(grad, -torch.tensor([[-0.1875, 0.1875], [0.0625, -0.0625]], dtype=torch.float64))


def test_thought_loss_rejects_mismatched_rows():
    with pytest.raises(ValueError, match=r"\(R,\)"):
        dwrl_thought_loss(torch.zeros(4), torch.zeros(4), torch.zeros(3), num_pairs=1, clip_eps=0.2)
