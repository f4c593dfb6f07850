import math

import pytest
import torch

from prefrl.objectives.policy import (
    ADVANTAGES,
    AGGREGATIONS,
    aggregate,
    clipped_value_loss,
    explained_variance,
    gae_advantages,
    grpo_advantages,
    kl_penalty,
    length_debiased_rewards,
    masked_mean,
    masked_whiten,
    policy_entropy_from_logits,
    ppo_clipped_policy_loss,
    rloo_advantages,
)

# ---------------------------------------------------------------------------------------------------------------
# masked statistics


def test_masked_mean_all_and_per_row():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    # all: (1 + 2 + 4)/3 = 7/3; per row: [1.5, 4]
    assert math.isclose(masked_mean(values, mask).item(), 7 / 3, rel_tol=1e-6)
    assert torch.allclose(masked_mean(values, mask, dim=1), torch.tensor([1.5, 4.0]))


def test_masked_whiten_hand_computed():
    values = torch.tensor([[1.0, 2.0, 99.0], [3.0, -7.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # valid 1, 2, 3: mean 2, unbiased var ((−1)² + 0² + 1²)/(3 − 1) = 1 → [−1, 0, 1]; padding → 0
    expected = torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.allclose(masked_whiten(values, mask), expected, atol=1e-6)
    # shift_mean=False adds the mean 2 back on valid tokens: [1, 2, 3]
    expected_unshifted = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    assert torch.allclose(masked_whiten(values, mask, shift_mean=False), expected_unshifted, atol=1e-6)


def test_masked_whiten_zero_mean_unit_unbiased_variance_on_valid_tokens():
    torch.manual_seed(0)
    values = torch.randn(4, 6) * 3 + 5
    mask = torch.ones(4, 6)
    mask[0, 4:] = 0
    mask[2, 2:] = 0
    valid = masked_whiten(values, mask)[mask.bool()]
    assert abs(valid.mean().item()) < 1e-5
    assert math.isclose(valid.var(unbiased=True).item(), 1.0, rel_tol=1e-5)


def test_masked_whiten_needs_two_valid_tokens():
    with pytest.raises(ValueError, match="at least 2"):
        masked_whiten(torch.tensor([[1.0, 2.0]]), torch.tensor([[1, 0]]))


def test_explained_variance_hand_computed():
    # R = [1, 2, 3], V = [1, 2, 2]: R − V = [0, 0, 1]; Var(R − V) = (2·(1/3)² + (2/3)²)/3 = 2/9,
    # Var(R) = 2/3 (population variances; the Bessel factor cancels in the ratio) → EV = 1 − (2/9)/(2/3) = 2/3
    returns = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    values = torch.tensor([[1.0, 2.0, 2.0, -50.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    assert math.isclose(explained_variance(values, returns, mask).item(), 2 / 3, rel_tol=1e-6)
    assert math.isclose(explained_variance(returns, returns, mask).item(), 1.0, rel_tol=1e-6)
    # constant returns: undefined
    assert math.isnan(explained_variance(values, torch.ones(1, 4), mask).item())


# ---------------------------------------------------------------------------------------------------------------
# aggregations


LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0]])


def test_aggregations_hand_computed_and_different():
    # token-mean: (1 + 2 + 3 + 4)/4 = 2.5
    assert math.isclose(aggregate(LOSS, MASK, "token-mean").item(), 2.5)
    # sequence-mean: ((1 + 2 + 3)/3 + 4/1)/2 = (2 + 4)/2 = 3.0
    assert math.isclose(aggregate(LOSS, MASK, "sequence-mean").item(), 3.0)
    # fixed-length-sum: (1 + 2 + 3 + 4)/(B · L_max) = 10/(2 · 5) = 1.0
    assert math.isclose(aggregate(LOSS, MASK, "fixed-length-sum", max_length=5).item(), 1.0)
    assert set(AGGREGATIONS) == {"token-mean", "sequence-mean", "fixed-length-sum"}


def test_aggregation_validation():
    with pytest.raises(ValueError, match="fixed-length-sum, sequence-mean, token-mean"):
        aggregate(LOSS, MASK, "mean")
    with pytest.raises(ValueError, match="max_length"):
        aggregate(LOSS, MASK, "fixed-length-sum")
    with pytest.raises(ValueError, match="shorter"):
        aggregate(LOSS, MASK, "fixed-length-sum", max_length=2)
    with pytest.raises(ValueError, match="shapes must match"):
        aggregate(LOSS, MASK[:, :2], "token-mean")


def test_empty_mask_aggregates_to_zero_not_nan():
    empty = torch.zeros(2, 3)
    assert aggregate(LOSS, empty, "token-mean").item() == 0.0
    assert aggregate(LOSS, empty, "sequence-mean").item() == 0.0


# ---------------------------------------------------------------------------------------------------------------
# KL estimators


def test_kl_estimators_hand_computed():
    logprobs = torch.tensor([[-1.0, -2.0]])
    ref = torch.tensor([[-2.0, -1.0]])
    # d = log π − log π_ref = [1, −1]
    assert torch.allclose(kl_penalty(logprobs, ref, "k1"), torch.tensor([[1.0, -1.0]]))
    # k2 = ½ d² = [0.5, 0.5]
    assert torch.allclose(kl_penalty(logprobs, ref, "k2"), torch.tensor([[0.5, 0.5]]))
    # k3 = e^{−d} + d − 1: d=1 → e^{−1} = 0.367879; d=−1 → e − 2 = 0.718282
    assert torch.allclose(kl_penalty(logprobs, ref, "k3"), torch.tensor([[math.exp(-1), math.e - 2]]))


def test_k3_and_k2_nonnegative_and_zero_at_equality():
    torch.manual_seed(0)
    logprobs = torch.linspace(-20, 0, 101).view(1, -1)
    ref = torch.flip(logprobs, dims=[1]) + torch.randn(1, 101)
    assert (kl_penalty(logprobs, ref, "k3") >= 0).all()
    assert (kl_penalty(logprobs, ref, "k2") >= 0).all()
    assert kl_penalty(logprobs, logprobs, "k3").abs().max().item() == 0.0


def test_kl_validation():
    with pytest.raises(ValueError, match="k1, k2, k3"):
        kl_penalty(torch.zeros(1, 2), torch.zeros(1, 2), "k4")
    with pytest.raises(ValueError, match="shapes must match"):
        kl_penalty(torch.zeros(1, 2), torch.zeros(1, 3), "k1")


# ---------------------------------------------------------------------------------------------------------------
# GAE


def test_gae_hand_computed_three_steps_and_padding():
    gamma, lam = 0.9, 0.8  # γλ = 0.72
    rewards = torch.tensor([[0.0, 0.0, 1.0], [1.0, 2.0, 99.0]])
    values = torch.tensor([[0.5, 0.4, 0.3], [0.2, 0.1, 50.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    advantages, returns = gae_advantages(rewards, values, mask, gamma, lam)
    # row 0:
    #   t=2: δ = 1 + 0.9·0 − 0.3 = 0.7;            A = 0.7
    #   t=1: δ = 0 + 0.9·0.3 − 0.4 = −0.13;        A = −0.13 + 0.72·0.7 = 0.374
    #   t=0: δ = 0 + 0.9·0.4 − 0.5 = −0.14;        A = −0.14 + 0.72·0.374 = 0.12928
    #   returns A + V = [0.62928, 0.774, 1.0]
    # row 1 (last valid t=1, the padded value 50 is not bootstrapped):
    #   t=1: δ = 2 + 0.9·0 − 0.1 = 1.9;            A = 1.9
    #   t=0: δ = 1 + 0.9·0.1 − 0.2 = 0.89;         A = 0.89 + 0.72·1.9 = 2.258
    #   returns [2.458, 2.0], padding 0
    assert torch.allclose(advantages, torch.tensor([[0.12928, 0.374, 0.7], [2.258, 1.9, 0.0]]), atol=1e-6)
    assert torch.allclose(returns, torch.tensor([[0.62928, 0.774, 1.0], [2.458, 2.0, 0.0]]), atol=1e-6)
    # padding does not leak: other garbage at the padded position gives the same result
    rewards2, values2 = rewards.clone(), values.clone()
    rewards2[1, 2], values2[1, 2] = -1e3, 7e3
    advantages2, returns2 = gae_advantages(rewards2, values2, mask, gamma, lam)
    assert torch.equal(advantages, advantages2) and torch.equal(returns, returns2)


def test_gae_gamma_lambda_one_zero_values_is_reward_to_go():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    advantages, returns = gae_advantages(rewards, torch.zeros(2, 3), mask, 1.0, 1.0)
    # reward-to-go: [3+2+1, 3+2, 3] = [6, 5, 3]; [4+5, 5, pad 0]
    expected = torch.tensor([[6.0, 5.0, 3.0], [9.0, 5.0, 0.0]])
    assert torch.equal(advantages, expected) and torch.equal(returns, expected)


def test_gae_validation():
    with pytest.raises(ValueError, match="right-padded"):
        gae_advantages(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([[0, 1, 1]]), 1.0, 1.0)
    with pytest.raises(ValueError, match="shapes must match"):
        gae_advantages(torch.zeros(1, 3), torch.zeros(1, 2), torch.ones(1, 3), 1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# group advantages


def test_grpo_three_scalings():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])  # two prompts, K = 4
    centered = torch.tensor([0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0])  # r − group mean (0.5 and 2)
    # "none" (Dr. GRPO): just centered
    assert torch.allclose(grpo_advantages(rewards, 4, "none"), centered)
    # "group": group 1 unbiased std sqrt((4 · 0.25)/3) = 0.577350 → 0.5/(0.577350 + 1e-4) = 0.865875;
    #          group 2 std 0 → 0/(0 + 1e-4) = 0
    group = grpo_advantages(rewards, 4, "group")
    assert torch.allclose(group, centered / 0.5 * 0.8658754, atol=1e-6)
    # "batch": mean 10/8 = 1.25, Σ(r − 1.25)² = 2·1.25² + 2·0.25² + 4·0.75² = 5.5, std sqrt(5.5/7) = 0.886405
    #          → 0.5/(0.886405 + 1e-4) = 0.564012
    batch = grpo_advantages(rewards, 4, "batch")
    assert torch.allclose(batch, centered / 0.5 * 0.5640124, atol=1e-6)


def test_grpo_batch_scale_reads_the_whole_batch_when_given():
    """Two processes holding one prompt each: with every process's rewards (gathered) as
    `batch_rewards`, each half gets exactly the advantages one process computes for the whole batch."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 5.0, 2.0])
    whole = grpo_advantages(rewards, 4, "batch")
    halves = torch.cat([grpo_advantages(half, 4, "batch", batch_rewards=rewards.flip(0)) for half in rewards.split(4)])
    torch.testing.assert_close(halves, whole)
    # this process's rewards alone: a different std (what each process used before)
    assert not torch.allclose(grpo_advantages(rewards[:4], 4, "batch"), whole[:4])
    # only "batch" reads it
    torch.testing.assert_close(grpo_advantages(rewards[:4], 4, "group", batch_rewards=rewards), grpo_advantages(rewards[:4], 4, "group"))


def test_grpo_validation():
    with pytest.raises(ValueError, match="batch, group, none"):
        grpo_advantages(torch.zeros(4), 2, "std")
    with pytest.raises(ValueError, match="groups of 3"):
        grpo_advantages(torch.zeros(4), 3)
    with pytest.raises(ValueError, match="group_size"):
        grpo_advantages(torch.zeros(4), 1, "group")


def test_rloo_hand_computed():
    # 1 − (2+3)/2 = −1.5; 2 − (1+3)/2 = 0; 3 − (1+2)/2 = 1.5; also K/(K−1)·(r − mean) = 1.5·[−1, 0, 1]
    rewards = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 8.0])
    # group 2: 5 − 6.5 = −1.5, 5 − 6.5 = −1.5, 8 − 5 = 3
    assert torch.allclose(rloo_advantages(rewards, 3), torch.tensor([-1.5, 0.0, 1.5, -1.5, -1.5, 3.0]))
    with pytest.raises(ValueError, match="group_size"):
        rloo_advantages(rewards, 1)
    assert ADVANTAGES["rloo"] is rloo_advantages and ADVANTAGES["grpo"] is grpo_advantages


# ---------------------------------------------------------------------------------------------------------------
# PPO policy loss


def _four_cases():
    # row 0: A = +1 with ρ = 1.5 and ρ = 0.5; row 1: A = −1 with the same ratios; last position padded
    old = torch.zeros(2, 3)
    logprobs = torch.log(torch.tensor([[1.5, 0.5, 9.0], [1.5, 0.5, 9.0]]))
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    return logprobs, old, torch.tensor([1.0, -1.0]), mask


def test_ppo_clipped_loss_four_cases():
    logprobs, old, advantages, mask = _four_cases()
    loss, stats = ppo_clipped_policy_loss(logprobs, old, advantages, mask, clip_eps=0.2)
    # A>0, ρ=1.5 above 1.2:  max(−1.5, −1.2) = −1.2  clipped
    # A>0, ρ=0.5 below 0.8:  max(−0.5, −0.8) = −0.5  unclipped
    # A<0, ρ=1.5 above 1.2:  max( 1.5,  1.2) =  1.5  unclipped
    # A<0, ρ=0.5 below 0.8:  max( 0.5,  0.8) =  0.8  clipped
    # token-mean: (−1.2 − 0.5 + 1.5 + 0.8)/4 = 0.15; clip fraction 2/4
    assert math.isclose(loss.item(), 0.15, abs_tol=1e-6)
    assert math.isclose(stats["clip_fraction"].item(), 0.5)
    # ratio mean (1.5 + 0.5 + 1.5 + 0.5)/4 = 1; approx_kl ½·(2·ln²1.5 + 2·ln²0.5)/4 = ½·(0.164402 + 0.480453)/2
    assert math.isclose(stats["ratio_mean"].item(), 1.0, rel_tol=1e-6)
    assert math.isclose(stats["approx_kl"].item(), 0.1612137, rel_tol=1e-5)
    assert all(not v.requires_grad for v in stats.values())


def test_ppo_per_token_advantages_match_per_sequence_broadcast():
    logprobs, old, advantages, mask = _four_cases()
    per_sequence, _ = ppo_clipped_policy_loss(logprobs, old, advantages, mask, 0.2)
    per_token, _ = ppo_clipped_policy_loss(logprobs, old, advantages[:, None].expand(2, 3), mask, 0.2)
    assert torch.equal(per_sequence, per_token)


def test_ppo_clip_higher():
    logprobs, old, advantages, mask = _four_cases()
    loss, stats = ppo_clipped_policy_loss(logprobs, old, advantages, mask, clip_eps=0.2, clip_eps_high=0.6)
    # clip range [0.8, 1.6]: A>0, ρ=1.5 is no longer clipped → −1.5; others as before
    # (−1.5 − 0.5 + 1.5 + 0.8)/4 = 0.075; clip fraction 1/4
    assert math.isclose(loss.item(), 0.075, abs_tol=1e-6)
    assert math.isclose(stats["clip_fraction"].item(), 0.25)


@pytest.mark.parametrize("name", ["token-mean", "sequence-mean", "fixed-length-sum"])
def test_ppo_gradient_at_ratio_one_is_policy_gradient(name):
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    advantages = torch.randn(2, 3)
    logprobs = (-torch.rand(2, 3)).requires_grad_()
    loss, stats = ppo_clipped_policy_loss(logprobs, logprobs.detach(), advantages, mask, 0.2, name, max_length=4)
    (grad_ppo,) = torch.autograd.grad(loss, logprobs)
    reference = aggregate(-advantages * logprobs, mask, name, max_length=4)
    (grad_pg,) = torch.autograd.grad(reference, logprobs)
    assert torch.allclose(grad_ppo, grad_pg, atol=1e-7)
    assert stats["clip_fraction"].item() == 0.0 and stats["approx_kl"].item() == 0.0


def test_ppo_validation():
    logprobs, old, advantages, mask = _four_cases()
    with pytest.raises(ValueError, match="per-sequence advantages"):
        ppo_clipped_policy_loss(logprobs, old, torch.zeros(3), mask, 0.2)
    with pytest.raises(ValueError, match="shapes must match"):
        ppo_clipped_policy_loss(logprobs, old[:, :2], advantages, mask, 0.2)
    with pytest.raises(ValueError, match="token-mean"):
        ppo_clipped_policy_loss(logprobs, old, advantages, mask, 0.2, aggregation="sum")


# ---------------------------------------------------------------------------------------------------------------
# value loss


def test_clipped_value_loss_cases_and_gradient():
    values = torch.tensor([[1.1, 1.5, 1.5, 9.0]], requires_grad=True)
    old_values = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    returns = torch.tensor([[2.0, 2.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    loss, stats = clipped_value_loss(values, old_values, returns, mask, clip_range_value=0.2)
    # t0: V inside [0.8, 1.2]: both errors (1.1 − 2)² = 0.81          → ½·0.81 = 0.405, not clipped
    # t1: V_clip = 1.2: (1.5 − 2)² = 0.25 < (1.2 − 2)² = 0.64         → ½·0.64 = 0.32, clipped branch used
    # t2: V_clip = 1.2: (1.5 − 0)² = 2.25 > (1.2 − 0)² = 1.44         → ½·2.25 = 1.125, unclipped branch used
    # token-mean (0.405 + 0.32 + 1.125)/3 = 0.616667; clip fraction 1/3
    assert math.isclose(loss.item(), 1.85 / 3, rel_tol=1e-6)
    assert math.isclose(stats["value_clip_fraction"].item(), 1 / 3, rel_tol=1e-6)
    loss.backward()
    # ∂/∂V: t0 (1.1 − 2)/3 = −0.3; t1 clipped → 0; t2 (1.5 − 0)/3 = 0.5; padding 0
    assert torch.allclose(values.grad, torch.tensor([[-0.3, 0.0, 0.5, 0.0]]), atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# entropy


def test_policy_entropy_from_logits():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1e4, -1e4], [5.0, -3.0, 2.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # uniform over 4: ln 4; uniform over 2: ln 2; third masked → (ln 4 + ln 2)/2 = 1.5 ln 2 = 1.039721
    assert math.isclose(policy_entropy_from_logits(logits, mask).item(), 1.5 * math.log(2), rel_tol=1e-6)
    with pytest.raises(ValueError, match="B, T, V"):
        policy_entropy_from_logits(logits[0], mask)


# ---------------------------------------------------------------------------------------------------------------
# length-debiased rewards


def test_length_debiased_rewards_hand_computed():
    # group 1: r [1, 3], ℓ [10, 20] -> centred r [-1, 1], ℓ [-5, 5]; group 2: r [2, 2], ℓ [4, 6] -> [0, 0], [-1, 1]
    # β = (5 + 5 + 0 + 0) / (25 + 25 + 1 + 1) = 5/26
    rewards, lengths = torch.tensor([1.0, 3.0, 2.0, 2.0]), torch.tensor([10, 20, 4, 6])
    debiased, slope = length_debiased_rewards(rewards, lengths, 2)
    assert math.isclose(slope.item(), 5 / 26, rel_tol=1e-6)
    # r − β(ℓ − ℓ̄_g): [1 + 25/26, 3 − 25/26, 2 + 5/26, 2 − 5/26]; the indifferent group now prefers the
    # shorter answer by as much as the batch preferred the longer one per token
    assert torch.allclose(debiased, torch.tensor([51, 53, 57, 47]) / 26)


def test_length_debiased_rewards_invariants():
    generator = torch.Generator().manual_seed(0)
    rewards, lengths = torch.randn(24, generator=generator), torch.randint(1, 64, (24,), generator=generator)
    debiased, slope = length_debiased_rewards(rewards, lengths, 6)
    # group means are kept; what remains has no linear relation to group-centred length
    assert torch.allclose(debiased.view(4, 6).mean(1), rewards.view(4, 6).mean(1), atol=1e-6)
    centred_lengths = lengths.view(4, 6).float() - lengths.view(4, 6).float().mean(1, keepdim=True)
    centred = debiased.view(4, 6) - debiased.view(4, 6).mean(1, keepdim=True)
    assert abs((centred * centred_lengths).sum().item()) < 1e-3
    # a reward that is exactly linear in length within groups is flattened to its group means
    linear = torch.arange(4).repeat_interleave(6).float() + 0.5 * lengths.float()
    flattened, slope = length_debiased_rewards(linear, lengths, 6)
    assert math.isclose(slope.item(), 0.5, rel_tol=1e-5)
    assert torch.allclose(flattened.view(4, 6), linear.view(4, 6).mean(1, keepdim=True).expand(4, 6), atol=1e-4)


def test_length_debiased_rewards_equal_lengths_change_nothing():
    rewards = torch.tensor([0.2, 0.9, -1.0, 0.4])
    debiased, slope = length_debiased_rewards(rewards, torch.tensor([7, 7, 3, 3]), 2)
    assert slope.item() == 0.0 and torch.equal(debiased, rewards)
