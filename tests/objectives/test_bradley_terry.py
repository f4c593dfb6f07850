import math

import torch

from prefrl.objectives import bradley_terry_loss


def test_hand_computed_loss_and_stats():
    # differences 1 and −1: losses log(1+e^−1) = 0.313262 and log(1+e^1) = 1.313262, mean 0.813262
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    loss, stats = bradley_terry_loss(chosen, rejected)
    assert math.isclose(loss.item(), 0.8132616875, rel_tol=1e-6)
    assert stats["accuracy"].item() == 0.5
    assert stats["reward_margin"].item() == 0.0
    assert stats["chosen_reward"].item() == 1.0 and stats["rejected_reward"].item() == 1.0


def test_margin_is_subtracted_inside_the_sigmoid():
    # r⁺ − r⁻ − m = 3 − 1 = 2: −log σ(2) = log(1 + e^−2) = 0.126928
    loss, _ = bradley_terry_loss(torch.tensor([3.0]), torch.tensor([0.0]), margins=torch.tensor([1.0]))
    assert math.isclose(loss.item(), 0.1269280110, rel_tol=1e-6)


def test_centering_adds_squared_sum():
    # pair (1, 1): −log σ(0) = log 2 = 0.693147; centering 0.1 · (1+1)² = 0.4
    loss, _ = bradley_terry_loss(torch.tensor([1.0]), torch.tensor([1.0]), center_rewards_coefficient=0.1)
    assert math.isclose(loss.item(), math.log(2) + 0.4, rel_tol=1e-6)


def test_gradient_pushes_chosen_up_and_rejected_down():
    chosen = torch.tensor([0.5], requires_grad=True)
    rejected = torch.tensor([0.5], requires_grad=True)
    loss, _ = bradley_terry_loss(chosen, rejected)
    loss.backward()
    # d/dr⁺ −log σ(r⁺−r⁻) = −(1 − σ(0)) = −0.5
    assert chosen.grad.item() == -0.5 and rejected.grad.item() == 0.5


def test_numerically_stable_for_large_differences():
    loss, _ = bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([200.0]))
    assert math.isclose(loss.item(), 400.0, rel_tol=1e-6)
