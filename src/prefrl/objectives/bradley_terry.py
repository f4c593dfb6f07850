"""Bradley–Terry reward-model loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margins: torch.Tensor | None = None,
    center_rewards_coefficient: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Negative log-likelihood of the preferences under Bradley–Terry, with optional margin and centering.

        ℓ = mean_i [ −log σ(r⁺_i − r⁻_i − m_i) ] + c · mean_i [ (r⁺_i + r⁻_i)² ]

    The margin m (Llama 2's "margin" column) asks the chosen reward to win by at least m; the
    centering term (c = `center_rewards_coefficient`, Eisenstein et al. 2023, as in TRL) keeps
    rewards near zero, since BT only identifies reward differences.

    Args:
        chosen_rewards: (B,) r(x, y⁺).
        rejected_rewards: (B,) r(x, y⁻).
        margins: (B,) or None; m_i, 0 when None.
        center_rewards_coefficient: c ≥ 0.

    Returns:
        loss: scalar.
        stats: accuracy (fraction with r⁺ > r⁻), reward margin mean, chosen/rejected reward means.
    """
    differences = chosen_rewards - rejected_rewards
    shifted = differences - margins if margins is not None else differences
    loss = -F.logsigmoid(shifted).mean()
    if center_rewards_coefficient:
        loss = loss + center_rewards_coefficient * ((chosen_rewards + rejected_rewards) ** 2).mean()
    stats = {
        "accuracy": (differences > 0).float().mean().detach(),
        "reward_margin": differences.mean().detach(),
        "chosen_reward": chosen_rewards.mean().detach(),
        "rejected_reward": rejected_rewards.mean().detach(),
    }
    return loss, stats
