import math

import pytest
import torch

from prefrl.objectives.r2m import grebt_loss, group_reward_entropy, omega_schedule, select_group_extremes

# --------------------------------------------------------------------------------------------------
# ω(t) = max(½ cos(π t/T) + ½, Ω)
# --------------------------------------------------------------------------------------------------


def test_omega_endpoints_and_floor():
    assert omega_schedule(0, 100, floor=0.6) == 1.0
    # t = T/2: ½ cos(π/2) + ½ = ½, below Ω = 0.6 → 0.6; with Ω = 0.3 the cosine's ½ wins
    assert omega_schedule(50, 100, floor=0.6) == pytest.approx(0.6)
    assert omega_schedule(50, 100, floor=0.3) == pytest.approx(0.5)
    # t = T: ½ cos(π) + ½ = 0 → Ω
    assert omega_schedule(100, 100, floor=0.6) == pytest.approx(0.6)
    assert omega_schedule(100, 100, floor=0.3) == pytest.approx(0.3)
    # t = T/4: ½ cos(π/4) + ½ = 0.853553
    assert omega_schedule(25, 100, floor=0.3) == pytest.approx(0.5 + 0.5 * math.sqrt(0.5))
    assert isinstance(omega_schedule(25, 100, floor=0.3), float)


def test_omega_clips_t_and_never_goes_below_the_floor():
    assert omega_schedule(-5, 100, floor=0.6) == 1.0
    assert omega_schedule(250, 100, floor=0.6) == pytest.approx(0.6)
    values = [omega_schedule(t, 100, floor=0.4) for t in range(0, 121)]
    assert min(values) == pytest.approx(0.4)
    assert all(a >= b for a, b in zip(values, values[1:]))  # non-increasing
    with pytest.raises(ValueError, match="total_steps"):
        omega_schedule(0, 0, floor=0.6)
    with pytest.raises(ValueError, match="floor"):
        omega_schedule(0, 10, floor=1.5)


# --------------------------------------------------------------------------------------------------
# Group reward entropy
# --------------------------------------------------------------------------------------------------


def test_gre_of_a_degenerate_group_is_log_k_with_finite_zero_gradient():
    # std 0 → (r − mean)/(0 + ε) = 0 exactly → p uniform → GRE = log 4
    rewards = torch.full((4,), 1.7, requires_grad=True)
    entropy = group_reward_entropy(rewards, group_size=4)
    assert entropy.shape == (1,)
    assert entropy.item() == pytest.approx(math.log(4))
    entropy.sum().backward()
    assert torch.equal(rewards.grad, torch.zeros(4))  # uniform is the entropy's maximum: stationary, not NaN


def test_gre_of_a_two_element_group_hand_computed():
    # (0, 1): mean ½, Bessel std √((¼ + ¼)/1) = 0.707107, z = ±0.5/0.707108 = ±0.707106
    # p = σ(±2·0.707106) = (0.195571, 0.804429); GRE = −Σ p ln p = 0.494200
    assert group_reward_entropy(torch.tensor([0.0, 1.0]), 2).item() == pytest.approx(0.4942003620, rel=1e-6)
    # scale-free: any two distinct rewards standardise to ±1/√2
    assert group_reward_entropy(torch.tensor([-30.0, 70.0]), 2).item() == pytest.approx(0.4942003620, rel=1e-6)


def test_gre_lies_below_log_k_for_spread_groups():
    rewards = torch.randn(50 * 5, generator=torch.Generator().manual_seed(0))
    entropy = group_reward_entropy(rewards, 5)
    assert entropy.shape == (50,)
    assert (entropy < math.log(5)).all() and (entropy > 0).all()


def test_gre_rejects_bad_shapes():
    with pytest.raises(ValueError, match="group_size"):
        group_reward_entropy(torch.zeros(7), 3)
    with pytest.raises(ValueError, match="group_size"):
        group_reward_entropy(torch.zeros(4), 1)


# --------------------------------------------------------------------------------------------------
# Extremes and GREBT
# --------------------------------------------------------------------------------------------------


def test_select_group_extremes_indexes_the_flat_tensor():
    rewards = torch.tensor([0.0, 2.0, 1.0, 5.0, 5.0, 3.0, 1.0, 1.0, 1.0])
    hi, lo = select_group_extremes(rewards, 3)
    # ties: first maximum, last minimum (an all-equal group still yields two different responses)
    assert hi.tolist() == [1, 3, 6]
    assert lo.tolist() == [0, 5, 8]


# Two groups of K = 3. Group A (0, 1, 2): mean 1, Bessel std 1, z ≈ (−1, 0, 1),
#   p = (e⁻¹, 1, e)/4.086161, GRE = ln 4.086161 − (−e⁻¹ + e)/4.086161 = 1.407606 − 0.575210 = 0.832396;
#   BT pair (2, 0): −log σ(2) = 0.126928.
# Group B (1, 1, 1): GRE = ln 3 = 1.098612; BT pair (1, 1): log 2 = 0.693147.
# BT = (0.126928 + 0.693147)/2 = 0.410038, GRE = (0.832396 + 1.098612)/2 = 0.965504,
# α = 0.3: 0.7·0.410038 + 0.3·0.965504 = 0.287026 + 0.289651 = 0.576677.
GROUP_REWARDS = torch.tensor([0.0, 1.0, 2.0, 1.0, 1.0, 1.0])


def _grebt(**switches):
    hi, lo = select_group_extremes(GROUP_REWARDS, 3)
    return grebt_loss(GROUP_REWARDS[hi], GROUP_REWARDS[lo], GROUP_REWARDS, 3, alpha=0.3, **switches)


def test_grebt_hand_computed():
    loss, stats = _grebt()
    assert loss.item() == pytest.approx(0.5766774976, rel=1e-5)
    assert stats["bt"].item() == pytest.approx(0.4100375958, rel=1e-6)
    assert stats["gre"].item() == pytest.approx(0.9655039353, rel=1e-5)
    assert stats["accuracy"].item() == 0.5  # group B's pair ties
    assert stats["reward_margin"].item() == pytest.approx(1.0)
    assert stats["group_reward_std"].item() == pytest.approx(0.5)


def test_grebt_switches():
    # without GRE: BT alone; without BT: GRE alone (weight 1 each)
    assert _grebt(use_gre=False)[0].item() == pytest.approx(0.4100375958, rel=1e-6)
    assert _grebt(use_bt=False)[0].item() == pytest.approx(0.9655039353, rel=1e-5)
    # both terms are reported whichever is on
    assert _grebt(use_bt=False)[1]["bt"].item() == pytest.approx(0.4100375958, rel=1e-6)
    with pytest.raises(ValueError, match="use_bt, use_gre"):
        _grebt(use_bt=False, use_gre=False)
    with pytest.raises(ValueError, match="alpha"):
        grebt_loss(torch.zeros(1), torch.zeros(1), torch.zeros(3), 3, alpha=1.5)


def test_grebt_minimises_the_entropy_term():
    # The paper adds +α·GRE and minimises: moving group A from (0, 1, 2) to (0, 0, 2) —
    # z = (−0.577, −0.577, 1.155), GRE 0.7558 < 0.8324 — lowers the GRE part of the loss.
    spread = group_reward_entropy(torch.tensor([0.0, 1.0, 2.0]), 3).item()
    skewed = group_reward_entropy(torch.tensor([0.0, 0.0, 2.0]), 3).item()
    assert skewed < spread
    gre_only = lambda rewards: grebt_loss(rewards[2:], rewards[:1], rewards, 3, alpha=0.3, use_bt=False)[0].item()
    assert gre_only(torch.tensor([0.0, 0.0, 2.0])) < gre_only(torch.tensor([0.0, 1.0, 2.0]))
    # gradient of the GRE-only loss on group A moves the middle reward down toward the low one
    rewards = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
    grebt_loss(rewards[2:], rewards[:1], rewards, 3, alpha=0.3, use_bt=False)[0].backward()
    assert rewards.grad[1].item() > 0  # descent lowers r₁


def test_grebt_bt_gradient_separates_the_pair():
    chosen = torch.tensor([0.5], requires_grad=True)
    rejected = torch.tensor([0.5], requires_grad=True)
    loss, _ = grebt_loss(chosen, rejected, torch.tensor([0.5, 0.5]), 2, alpha=0.3, use_gre=False)
    loss.backward()
    # d/dr_hi −log σ(r_hi − r_lo) = −(1 − σ(0)) = −0.5
    assert chosen.grad.item() == pytest.approx(-0.5) and rejected.grad.item() == pytest.approx(0.5)


def test_gre_is_shift_and_scale_invariant_so_its_gradient_cannot_spread_rewards():
    """On standardised rewards Σ z² = K − 1 is fixed: GRE(a·r + b) = GRE(r), and ∂GRE/∂r has no
    component along 1 (shift) or along r − mean r (scale) — lowering GRE cannot spread a group apart."""
    generator = torch.Generator().manual_seed(0)
    rewards = torch.randn(6 * 5, generator=generator, dtype=torch.float64)
    # exact with ε = 0; the default ε = 1e-6 only perturbs it at the 1e-6 level
    base = group_reward_entropy(rewards, 5, eps=0.0)
    torch.testing.assert_close(group_reward_entropy(3.7 * rewards - 2.0, 5, eps=0.0), base, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(group_reward_entropy(3.7 * rewards - 2.0, 5), base, rtol=1e-5, atol=1e-5)
    leaf = rewards.clone().requires_grad_(True)
    group_reward_entropy(leaf, 5, eps=0.0).sum().backward()
    gradient, groups = leaf.grad.view(6, 5), rewards.view(6, 5)
    centred = groups - groups.mean(1, keepdim=True)
    assert gradient.abs().max() > 1e-2  # not trivially zero
    torch.testing.assert_close(gradient.sum(1), torch.zeros(6, dtype=torch.float64), rtol=0, atol=1e-9)
    torch.testing.assert_close((gradient * centred).sum(1), torch.zeros(6, dtype=torch.float64), rtol=0, atol=1e-9)


def test_minimising_gre_keeps_the_spread_and_makes_one_winner_over_a_tied_rest():
    """What the GRE term does: descent leaves the group's std where it was (to first order; the
    small drift is the step's curvature) and drives z to ((K−1)/√K, −1/√K, …), its minimum."""
    k = 4
    rewards = torch.tensor([0.3, -0.4, 0.1, 0.9], dtype=torch.float64, requires_grad=True)
    std_before = rewards.detach().std().item()
    optimizer = torch.optim.SGD([rewards], lr=0.05)
    for _ in range(4000):
        optimizer.zero_grad()
        group_reward_entropy(rewards, k).sum().backward()
        optimizer.step()
    final = rewards.detach()
    assert final.std().item() == pytest.approx(std_before, rel=0.05)  # not spread apart
    z = ((final - final.mean()) / final.std()).sort().values
    expected = torch.tensor([-1, -1, -1, k - 1], dtype=torch.float64) / math.sqrt(k)
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-3)
    assert final.argmax().item() == 3  # the top response of the start stays on top
