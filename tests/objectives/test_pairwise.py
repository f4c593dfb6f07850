"""The pairwise judge's verdict loss: hand-computed values and an independent computation."""

import math

import pytest
import torch

from prefrl.objectives.pairwise import pairwise_verdict_loss


def test_verdict_loss_hand_computed():
    # logits (0, ln 3): P(B) = 0.75. Label B: −log 0.75 = 0.287682; label A: −log 0.25 = 1.386294
    logits = torch.tensor([[0.0, math.log(3.0)]] * 2)
    loss, stats = pairwise_verdict_loss(logits, torch.tensor([1, 0]), label_smoothing=0.0)
    assert loss.item() == pytest.approx((0.287682 + 1.386294) / 2, rel=1e-5)
    assert stats["accuracy"].item() == 0.5
    assert stats["prob_correct"].item() == pytest.approx((0.75 + 0.25) / 2, rel=1e-6)
    # smoothing 0.1 on label B: −(0.9 log 0.75 + 0.1 log 0.25) = 0.397543
    loss, _ = pairwise_verdict_loss(logits[:1], torch.tensor([1]), label_smoothing=0.1)
    assert loss.item() == pytest.approx(0.397543, rel=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_verdict_loss_matches_the_smoothed_cross_entropy_written_out(smoothing):
    """ℓ = −mean[(1 − ε) log P(label) + ε log P(other)], computed from log-softmax by hand; the
    gradient as well."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(10, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 2, (10,), generator=generator)
    loss, _ = pairwise_verdict_loss(logits, labels, smoothing)
    log_p = torch.log_softmax(logits, dim=-1)
    rows = torch.arange(10)
    expected = -((1 - smoothing) * log_p[rows, labels] + smoothing * log_p[rows, 1 - labels]).mean()
    torch.testing.assert_close(loss, expected)
    (grad,) = torch.autograd.grad(loss, logits)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(grad, expected_grad)


def test_verdict_loss_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        pairwise_verdict_loss(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels \(N,\)"):
        pairwise_verdict_loss(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
