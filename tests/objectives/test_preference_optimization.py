import math

import pytest
import torch

from prefrl.objectives.preference_optimization import (
    DPO_LOSSES,
    dpo_loss,
    estimate_log_partition,
    gold_preference_matrix,
    pointwise_preference_matrix,
    select_sppo_pairs,
    sppo_loss,
    win_rate_against_policy,
)

# --------------------------------------------------------------------------------------------------
# Win rates and preference matrices
# --------------------------------------------------------------------------------------------------


def test_win_rates_count_the_self_pair_as_a_half():
    # The diagonal holds garbage (0.9, 0.0, 1.0) and must be read as ½:
    # row 0: (½ + 0.8 + 0.6)/3 = 0.633333, row 1: (0.2 + ½ + 0.3)/3 = 0.333333, row 2: (0.4 + 0.7 + ½)/3 = 0.533333
    matrix = torch.tensor([[0.9, 0.8, 0.6], [0.2, 0.0, 0.3], [0.4, 0.7, 1.0]])
    rates = win_rate_against_policy(matrix.unsqueeze(0))
    assert rates.shape == (1, 3)
    assert torch.allclose(rates[0], torch.tensor([1.9 / 3, 1.0 / 3, 1.6 / 3]))
    # with P + Pᵀ = 1 off the diagonal the win rates average ½
    assert rates.mean().item() == pytest.approx(0.5)
    # the input is not modified
    assert matrix[0, 0].item() == pytest.approx(0.9)


def test_win_rates_against_a_weighted_opponent():
    # opponent (½, ¼, ¼): row 0 = ½·½ + ¼·0.8 + ¼·0.6 = 0.25 + 0.2 + 0.15 = 0.6
    matrix = torch.tensor([[0.5, 0.8, 0.6], [0.2, 0.5, 0.3], [0.4, 0.7, 0.5]])
    rates = win_rate_against_policy(matrix, torch.tensor([2.0, 1.0, 1.0]))  # normalised inside
    assert rates[0].item() == pytest.approx(0.6)
    # row 1 = ½·0.2 + ¼·½ + ¼·0.3 = 0.1 + 0.125 + 0.075 = 0.3
    assert rates[1].item() == pytest.approx(0.3)


def test_win_rates_reject_a_non_square_matrix():
    with pytest.raises(ValueError, match="K, K"):
        win_rate_against_policy(torch.zeros(2, 3, 4))


def test_pointwise_matrix_is_bradley_terry():
    # σ(ln 3 − 0) = 3/(1 + 3) = 0.75
    matrix = pointwise_preference_matrix(torch.tensor([[0.0, math.log(3.0)]]))
    assert torch.allclose(matrix[0], torch.tensor([[0.5, 0.25], [0.75, 0.5]]))


def test_gold_matrix_is_one_zero_or_half():
    matrix = gold_preference_matrix(torch.tensor([1.0, 0.0, 1.0]))
    assert torch.equal(matrix, torch.tensor([[0.5, 1.0, 0.5], [0.0, 0.5, 0.0], [0.5, 1.0, 0.5]]))


def test_select_pairs_takes_argmax_and_argmin():
    winners, losers = select_sppo_pairs(torch.tensor([[0.6, 0.3, 0.6], [0.2, 0.7, 0.4], [0.5, 0.5, 0.5]]))
    # ties: first maximum, last minimum — an all-tied row still gives two different responses
    assert winners.tolist() == [0, 1, 0]
    assert losers.tolist() == [1, 0, 2]


# --------------------------------------------------------------------------------------------------
# SPPO loss and log Z
# --------------------------------------------------------------------------------------------------


def test_sppo_loss_hand_computed_eta_2():
    # log ratios (−1 − (−1.5), −2.5 − (−1.5)) = (0.5, −1.0)
    # targets η(P̂ − ½) = 2·(0.9 − 0.5), 2·(0.2 − 0.5) = (0.8, −0.6)
    # residuals (−0.3, −0.4), squares (0.09, 0.16), mean 0.125
    policy = torch.tensor([-1.0, -2.5], requires_grad=True)
    loss, stats = sppo_loss(policy, torch.tensor([-1.5, -1.5]), torch.tensor([0.9, 0.2]), eta=2.0)
    assert loss.item() == pytest.approx(0.125)
    assert stats["log_ratio"].item() == pytest.approx(-0.25)
    assert stats["target"].item() == pytest.approx(0.1)
    assert stats["win_rate"].item() == pytest.approx(0.55)
    assert stats["loss"].item() == pytest.approx(0.125)
    assert not any(value.requires_grad for value in stats.values())
    loss.backward()
    # ∂/∂ log π = 2·residual/N: (2·−0.3/2, 2·−0.4/2) = (−0.3, −0.4): both log-probs should rise
    assert torch.allclose(policy.grad, torch.tensor([-0.3, -0.4]))


def test_sppo_loss_with_log_partition():
    # targets η P̂ − log Z with log Z = 1.2: (1.8 − 1.2, 0.4 − 1.2) = (0.6, −0.8)
    # residuals (0.5 − 0.6, −1.0 + 0.8) = (−0.1, −0.2), squares (0.01, 0.04), mean 0.025
    policy, reference, rates = torch.tensor([-1.0, -2.5]), torch.tensor([-1.5, -1.5]), torch.tensor([0.9, 0.2])
    loss, _ = sppo_loss(policy, reference, rates, eta=2.0, log_partition=1.2)
    assert loss.item() == pytest.approx(0.025)
    # log Z = η/2 is exactly the default objective (eq. 3.6)
    default, _ = sppo_loss(policy, reference, rates, eta=2.0)
    assert sppo_loss(policy, reference, rates, eta=2.0, log_partition=1.0)[0].item() == pytest.approx(default.item())
    # (B, K) inputs take one log Z per prompt: row 0 with 1.2 (squares 0.01, 0.04), row 1 with 1.0 = η/2
    # (squares 0.09, 0.16): mean (0.01 + 0.04 + 0.09 + 0.16)/4 = 0.075
    batched, _ = sppo_loss(
        policy.expand(2, 2), reference.expand(2, 2), rates.expand(2, 2), eta=2.0, log_partition=torch.tensor([1.2, 1.0])
    )
    assert batched.item() == pytest.approx(0.075)


def test_sppo_loss_weights_and_shape_check():
    policy, reference, rates = torch.tensor([-1.0, -2.5]), torch.tensor([-1.5, -1.5]), torch.tensor([0.9, 0.2])
    # mask keeps only the first response: 0.09
    loss, _ = sppo_loss(policy, reference, rates, eta=2.0, weights=torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(0.09)
    with pytest.raises(ValueError, match="share a shape"):
        sppo_loss(policy, reference, torch.tensor([0.5]), eta=2.0)


def test_sppo_target_is_a_constant():
    # gradients reach only the policy log-probs, not the snapshot's log-probs or the win rates
    reference = torch.tensor([-1.5], requires_grad=True)
    rates = torch.tensor([0.9], requires_grad=True)
    loss, _ = sppo_loss(torch.tensor([-1.0], requires_grad=True), reference, rates, eta=2.0)
    loss.backward()
    assert reference.grad is None and rates.grad is None


def test_estimate_log_partition_is_the_sample_mean_of_exp():
    # K = 2, P̂ = (0.75, 0.25), η = 2: log ((e^1.5 + e^0.5)/2) = log((4.481689 + 1.648721)/2) = 1.120115
    rates = torch.tensor([[0.75, 0.25]])
    assert estimate_log_partition(rates, 2.0).item() == pytest.approx(1.1201145070, rel=1e-6)
    # with π_t = (¼, ¾): log(¼e^1.5 + ¾e^0.5) = log(1.120422 + 1.236541) = 0.857374
    assert estimate_log_partition(rates, 2.0, weights=torch.tensor([[1.0, 3.0]])).item() == pytest.approx(
        0.8573740195, rel=1e-6
    )
    # Jensen: P̂ averages ½, so log Ẑ ≥ η/2 = 1, with equality when every P̂ = ½
    assert estimate_log_partition(rates, 2.0).item() > 1.0
    assert estimate_log_partition(torch.full((1, 4), 0.5), 2.0).item() == pytest.approx(1.0)


def test_estimate_log_partition_from_a_full_matrix():
    # The pipeline: 3×3 matrix → win rates (0.633333, 0.333333, 0.533333) → log mean exp(η P̂), η = 3
    matrix = torch.tensor([[0.5, 0.8, 0.6], [0.2, 0.5, 0.3], [0.4, 0.7, 0.5]], dtype=torch.float64)
    rates = win_rate_against_policy(matrix)
    exact = math.log(sum(math.exp(3 * p) for p in (1.9 / 3, 1.0 / 3, 1.6 / 3)) / 3)
    assert estimate_log_partition(rates, 3.0).item() == pytest.approx(exact, rel=1e-12)


# --------------------------------------------------------------------------------------------------
# DPO family, β = 0.1
# --------------------------------------------------------------------------------------------------

# Pair 0: ρ⁺ = −1 − (−2) = 1, ρ⁻ = −3 − (−2) = −1, h = 2. Pair 1: ρ⁺ = ρ⁻ = 0, h = 0.
POLICY_CHOSEN = [-1.0, -4.0]
POLICY_REJECTED = [-3.0, -5.0]
REF_CHOSEN = [-2.0, -4.0]
REF_REJECTED = [-2.0, -5.0]


def _dpo(loss_type, label_smoothing=0.0, requires_grad=False):
    chosen = torch.tensor(POLICY_CHOSEN, requires_grad=requires_grad)
    rejected = torch.tensor(POLICY_REJECTED, requires_grad=requires_grad)
    loss, stats = dpo_loss(
        chosen, rejected, torch.tensor(REF_CHOSEN), torch.tensor(REF_REJECTED), beta=0.1,
        loss_type=loss_type, label_smoothing=label_smoothing,
    )
    return loss, stats, chosen, rejected


def test_dpo_sigmoid_hand_computed():
    # pair 0: −log σ(0.1·2) = log(1 + e^−0.2) = 0.598139; pair 1: log 2 = 0.693147; mean 0.645643
    loss, stats, _, _ = _dpo("sigmoid")
    assert loss.item() == pytest.approx(0.6456430250, rel=1e-6)
    # implicit rewards β·ρ: chosen (0.1, 0), rejected (−0.1, 0); accuracy ½ (a tie is not a win), margin 0.1
    assert stats["chosen_reward"].item() == pytest.approx(0.05)
    assert stats["rejected_reward"].item() == pytest.approx(-0.05)
    assert stats["reward_accuracy"].item() == 0.5
    assert stats["reward_margin"].item() == pytest.approx(0.1)


def test_dpo_label_smoothing():
    # pair 0: 0.9·log(1 + e^−0.2) + 0.1·log(1 + e^0.2) = 0.9·0.598139 + 0.1·0.798139 = 0.618139
    # pair 1: log 2 whatever ε; mean (0.618139 + 0.693147)/2 = 0.655643
    loss, _, _, _ = _dpo("sigmoid", label_smoothing=0.1)
    assert loss.item() == pytest.approx(0.6556430250, rel=1e-6)


def test_dpo_ipo_hand_computed():
    # 1/(2β) = 5: pair 0 (2 − 5)² = 9, pair 1 (0 − 5)² = 25, mean 17
    loss, _, _, _ = _dpo("ipo")
    assert loss.item() == pytest.approx(17.0)


def test_dpo_sppo_hard_hand_computed():
    # pair 0: (1 − 5)² + (−1 + 5)² = 32; pair 1: 25 + 25 = 50; mean 41
    loss, _, _, _ = _dpo("sppo_hard")
    assert loss.item() == pytest.approx(41.0)


def test_dpo_gradient_signs():
    # sigmoid: ∂/∂ log π(y⁺) = −β(1 − σ(βh))/B; pair 0: −0.1·(1 − σ(0.2))/2 = −0.022508
    # (negative: raising the chosen log-prob lowers the loss)
    loss, _, chosen, rejected = _dpo("sigmoid", requires_grad=True)
    loss.backward()
    assert chosen.grad[0].item() == pytest.approx(-0.0225083001, rel=1e-6)
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()
    assert torch.allclose(chosen.grad, -rejected.grad)
    for loss_type in ("ipo", "sppo_hard"):  # both pairs are below the 1/(2β) target: same directions
        loss, _, chosen, rejected = _dpo(loss_type, requires_grad=True)
        loss.backward()
        assert (chosen.grad < 0).all() and (rejected.grad > 0).all()


def test_dpo_registry_and_validation():
    assert set(DPO_LOSSES) == {"sigmoid", "ipo", "sppo_hard"}
    with pytest.raises(ValueError, match="'ipo', 'sigmoid', 'sppo_hard'"):
        _dpo("hinge")
    with pytest.raises(ValueError, match="label_smoothing"):
        _dpo("ipo", label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        _dpo("sigmoid", label_smoothing=0.5)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(*(torch.zeros(1) for _ in range(4)), beta=0.0)


def test_dpo_is_stable_for_large_margins():
    # h = −4000, β = 0.1: −log σ(−400) = 400
    loss, _ = dpo_loss(torch.tensor([-2000.0]), torch.tensor([2000.0]), torch.zeros(1), torch.zeros(1), beta=0.1)
    assert loss.item() == pytest.approx(400.0, rel=1e-6)
