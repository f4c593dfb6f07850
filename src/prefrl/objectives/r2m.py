"""R2M (paper 002): the feedback-mixing schedule ω(t) and the GREBT loss of the reward-model update.

After every policy update R2M refreshes the policy feedback h, scores each group's K responses,
takes the group's highest- and lowest-scored responses as a Bradley–Terry pair and minimises

    L_GREBT = (1 − α)·L_BT + α·L_GRE,   L_GRE = −Σ_j p_j log p_j,   p = softmax(standardised group rewards)

What GRE does: the standardised rewards z of a group have mean 0 and Σ_j z_j² = K − 1 whatever
the rewards, so GRE is unchanged when a group's rewards are shifted or scaled (r → a·r + b, a > 0)
and its gradient has no component along 1 or along r − mean r. It cannot move a group's rewards
apart (that is the BT term's margin); it only reshapes the group. Minimised, it drives the group
towards one response standing above the others, which draw together: z → ((K−1)/√K for the top,
−1/√K for the rest), the lowest entropy reachable. (Only a group whose std is below ε ≈ 1e-6 —
numerically degenerate — is spread by it, through the ε of the standardisation.)

The functions here are pure: tensors in, `(loss, stats)` (or the tensor) out; stats are detached.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def omega_schedule(step: int | float, total_steps: int | float, floor: float) -> float:
    """Weight of the frozen reward-token embedding H in H_fin = (1 − ω) Ĥ + ω H.

        ω(t) = max(½ cos(π t / T) + ½, Ω),   t clipped to [0, T]

    ω starts at 1 (trust the pretrained semantics), decays as a half cosine, and never drops below
    the floor Ω (paper default 0.6), so the policy feedback Ĥ gets at most 1 − Ω of the weight.

    Args:
        step: t.
        total_steps: T > 0.
        floor: Ω ∈ [0, 1].

    Returns:
        ω(t) as a float.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must lie in [0, 1], got {floor}")
    t = min(max(float(step), 0.0), float(total_steps))
    return max(0.5 * math.cos(math.pi * t / total_steps) + 0.5, floor)


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if group_size < 2:
        raise ValueError(f"group_size must be ≥ 2, got {group_size}")
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(
            f"rewards must be a flat (B·K,) tensor with K = group_size = {group_size}; "
            f"got shape {tuple(rewards.shape)}"
        )
    return rewards.view(-1, group_size)


def group_reward_entropy(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """Group reward entropy (GRE) of each group of K responses to one prompt.

        z_j = (r_j − mean(r)) / (std(r) + ε),   p = softmax(z),   GRE = −Σ_j p_j log p_j ∈ [0, log K]

    std is the Bessel-corrected (K − 1) group standard deviation, as in GRPO's group scaling. A group
    of equal rewards has std 0, so z = 0 exactly (ε keeps the division finite) and GRE = log K, its
    maximum: a degenerate group. Otherwise Σ_j z_j² = K − 1, so GRE depends only on the shape of the
    group, not on its location or scale: GRE(a·r + b) = GRE(r) for a > 0 and ∂GRE/∂r ⟂ 1, r − mean r
    (when std ≫ ε). It is lowest at z = ((K−1)/√K, −1/√K, …, −1/√K) up to order — one response
    above a tied rest — and highest, among non-degenerate groups, at the mirror image (one below).
    For K = 2 any two distinct rewards give z = ±1/√2 and the same GRE (≈ 0.4942) whatever their
    gap, so the term only shapes groups of K ≥ 3.

    Args:
        rewards: (B·K,) rewards, groups contiguous (rows of the (B, K) view).
        group_size: K ≥ 2.
        eps: ε.

    Returns:
        (B,) entropy per group.
    """
    groups = _grouped(rewards, group_size)
    standardised = (groups - groups.mean(dim=1, keepdim=True)) / (groups.std(dim=1, keepdim=True) + eps)
    log_p = F.log_softmax(standardised, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def select_group_extremes(rewards: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each group's highest- and lowest-scored responses, R2M's Bradley–Terry pair.

    Ties: the first maximal and the *last* minimal index, so the two always differ (K ≥ 2).

    Args:
        rewards: (B·K,) rewards, groups contiguous.
        group_size: K ≥ 2.

    Returns:
        hi_idx, lo_idx: (B,) long indices into the flat (B·K,) tensor.
    """
    groups = _grouped(rewards, group_size)
    offsets = torch.arange(groups.shape[0], device=rewards.device) * group_size
    hi = groups.argmax(dim=1)
    lo = group_size - 1 - groups.flip(1).argmin(dim=1)
    return offsets + hi, offsets + lo


def grebt_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    group_rewards: torch.Tensor,
    group_size: int,
    alpha: float,
    use_bt: bool = True,
    use_gre: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """R2M's group-reward-entropy Bradley–Terry loss (GREBT), minimised over the feedback head.

        L_BT  = mean_i −log σ(r(x_i, y_i,hi) − r(x_i, y_i,lo))
        L_GRE = mean_i −Σ_j p_ij log p_ij,   p_i = softmax of group i's standardised rewards
        L     = (1 − α) L_BT + α L_GRE

    Sign: the paper's loss adds +α·(entropy) and is *minimised*, so the entropy of the
    standardised-reward softmax is pushed **down**. The paper presents this as countering "group
    degeneration" (equal rewards, the maximum-entropy case log K). On standardised rewards, though,
    GRE is invariant to shifting and scaling a group's rewards: its gradient is orthogonal to 1 and
    to r − mean r, so it does **not** spread the rewards apart (only the BT term widens the
    margin r_hi − r_lo). What lowering it does is reshape the group: it raises the top response's
    standardised reward towards (K−1)/√K and draws the other K − 1 together below it — one clear
    winner over a tied rest (see `group_reward_entropy`; tested in tests/objectives/test_r2m.py).

    Ablation switches (the paper's "w/o GRE" and "w/o BT"): with one term off the loss is the
    other term alone, weight 1 (use_gre=False → L = L_BT; use_bt=False → L = L_GRE); both off is
    an error. Both terms are always reported in stats.

    Args:
        chosen_rewards: (B,) rewards of each group's highest-scored response (see
            `select_group_extremes`), recomputed with the refreshed policy feedback.
        rejected_rewards: (B,) rewards of each group's lowest-scored response.
        group_rewards: (B·K,) rewards of all responses, groups contiguous.
        group_size: K.
        alpha: α ∈ [0, 1] (paper default 0.3).
        use_bt, use_gre: switches.

    Returns:
        loss: scalar.
        stats: bt, gre (entropy mean), accuracy (fraction with r_hi > r_lo), reward_margin,
            group_reward_std (mean within-group std), loss.
    """
    if not (use_bt or use_gre):
        raise ValueError("grebt_loss needs at least one of use_bt, use_gre")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if group_rewards.numel() != chosen_rewards.numel() * group_size:
        raise ValueError(
            f"group_rewards has {group_rewards.numel()} entries; expected B·K = {chosen_rewards.numel()}·{group_size}"
        )
    differences = chosen_rewards - rejected_rewards
    bt = -F.logsigmoid(differences).mean()
    gre = group_reward_entropy(group_rewards, group_size).mean()
    if use_bt and use_gre:
        loss = (1 - alpha) * bt + alpha * gre
    else:
        loss = bt if use_bt else gre
    stats = {
        "bt": bt.detach(),
        "gre": gre.detach(),
        "accuracy": (differences > 0).float().mean().detach(),
        "reward_margin": differences.mean().detach(),
        "group_reward_std": _grouped(group_rewards, group_size).std(dim=1).mean().detach(),
        "loss": loss.detach(),
    }
    return loss, stats
