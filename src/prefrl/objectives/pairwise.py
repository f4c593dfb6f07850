"""The pairwise generative judge's verdict loss (GRAM-style; Pairwise-RL, paper 001)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_verdict_loss(verdict_logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy over the two verdict tokens {"A", "B"}, with label smoothing ε.

    Every pair is read in both orders, [x, y⁺, y⁻] with verdict "A" and [x, y⁻, y⁺] with verdict "B"
    (the rows of one batch); with P(·) = softmax(logit_A, logit_B),

        ℓ = mean over rows of −[(1 − ε) log P(correct verdict) + ε log P(other verdict)]

    (torch's `label_smoothing` spreads its mass over both classes, so it is given 2ε.)

    Args:
        verdict_logits: (N, 2) logits of "A" and "B" at each judge prompt's answer position.
        labels: (N,) 0 when "A" is right, 1 when "B" is.
        label_smoothing: ε in [0, ½).

    Returns:
        loss: scalar.
        stats: accuracy (fraction with argmax = label), prob_correct (mean P of the right verdict).
    """
    if verdict_logits.dim() != 2 or verdict_logits.shape[-1] != 2 or labels.shape != verdict_logits.shape[:1]:
        raise ValueError(f"pairwise_verdict_loss: verdict_logits must be (N, 2) and labels (N,); got {tuple(verdict_logits.shape)} and {tuple(labels.shape)}")
    loss = F.cross_entropy(verdict_logits, labels, label_smoothing=2 * label_smoothing)
    probs = torch.softmax(verdict_logits.detach(), dim=-1)
    return loss, {
        "accuracy": (verdict_logits.argmax(-1) == labels).float().mean().detach(),
        "prob_correct": probs.gather(-1, labels[:, None]).mean(),
    }
