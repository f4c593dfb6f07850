"""Policy-gradient objectives: advantages (GAE, GRPO, RLOO), KL estimators, PPO clipped losses, aggregations.

Pure tensor functions, no models, no I/O. Shape conventions: B sequences (B = number of prompts × K samples
for the group estimators), T response tokens, right-padded; `mask` is (B, T), 1 (or True) on response tokens
and 0 on padding. Masks may be bool or float; they are cast to the values' dtype.

Choices made by name through the registries at the bottom of the page (no if/elif chains):
  AGGREGATIONS  "token-mean" | "sequence-mean" | "fixed-length-sum"   -> `aggregate`
  KL_ESTIMATORS "k1" | "k2" | "k3"                                     -> `kl_penalty`
  GRPO_SCALES   "group" | "batch" | "none"                             -> `grpo_advantages`
  ADVANTAGES    "grpo" | "rloo"  (group estimators, called as f(rewards, group_size))

The advantage estimators compute targets: call them under `torch.no_grad()` (they do not detach for you).
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = [
    "ADVANTAGES",
    "AGGREGATIONS",
    "GRPO_SCALES",
    "KL_ESTIMATORS",
    "aggregate",
    "clipped_value_loss",
    "explained_variance",
    "fixed_length_sum",
    "gae_advantages",
    "grpo_advantages",
    "kl_penalty",
    "length_debiased_rewards",
    "masked_mean",
    "masked_var",
    "masked_whiten",
    "policy_entropy_from_logits",
    "ppo_clipped_policy_loss",
    "rloo_advantages",
    "sequence_mean",
    "token_mean",
]


# --------------------------------------------------------------------------------------------------------------
# validation helpers


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes must match: {listed}")


def _check_2d(name: str, tensor: torch.Tensor) -> None:
    if tensor.dim() != 2:
        raise ValueError(f"{name} must be (B, T), got shape {tuple(tensor.shape)}")


def _lookup(registry: dict, name: str, what: str):
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(sorted(registry))}") from None


def _float_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.to(like.dtype)


# --------------------------------------------------------------------------------------------------------------
# masked statistics


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` over positions where `mask` is set.

        mean = Σ m·v / Σ m   (over `dim`, or over everything when dim is None)

    Same as TRL's `masked_mean`: no clamp on the denominator, so an all-zero mask gives NaN.

    Args:
        values: any shape, e.g. (B, T).
        mask: same shape as `values`.
        dim: dimension to reduce, or None for all.
    """
    _check_same_shape(values=values, mask=mask)
    m = _float_mask(mask, values)
    if dim is None:
        return (values * m).sum() / m.sum()
    return (values * m).sum(dim) / m.sum(dim)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked values (all dims), Bessel-corrected by default as TRL's `masked_var`.

        var = Σ m·(v − mean)² / Σ m  ·  n/(n − 1)   with n = Σ m

    Raises ValueError when fewer than 2 positions are valid and `unbiased` is set (TRL raises too).
    """
    _check_same_shape(values=values, mask=mask)
    m = _float_mask(mask, values)
    count = m.sum()
    if unbiased and count.item() < 2:
        raise ValueError(f"unbiased masked variance needs at least 2 valid positions, got {count.item():g}")
    mean = (values * m).sum() / count
    var = (((values - mean) ** 2) * m).sum() / count
    return var * count / (count - 1) if unbiased else var


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Whiten values over the valid positions (advantage normalisation).

        w = (v − mean) / sqrt(var + 1e-8)        (shift_mean=True)
        w = (v − mean) / sqrt(var + 1e-8) + mean (shift_mean=False: rescale only)

    mean and var are `masked_mean` / `masked_var` (unbiased) over all valid positions of the batch, as TRL's
    `masked_whiten` (trl/core.py, used by the PPO trainer). Difference from TRL: padding positions come back as 0
    (TRL leaves them at the whitened garbage value; they are masked downstream either way).

    Args:
        values: (B, T).
        mask: (B, T), at least 2 valid positions.

    Returns:
        (B, T), zero on padding.
    """
    _check_same_shape(values=values, mask=mask)
    m = _float_mask(mask, values)
    mean = masked_mean(values, m)
    var = masked_var(values, m, unbiased=True)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * m


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Explained variance of the value predictions over valid positions (a metric, detached).

        EV = 1 − Var(R − V) / Var(R)

    1 is a perfect value function, 0 no better than predicting the mean return, < 0 worse. Both variances use
    the same normalisation, so the Bessel factor cancels; NaN when the valid returns are constant (as in
    stable-baselines3's `explained_variance`).

    Args:
        values: (B, T) V(s_t).
        returns: (B, T) R_t.
        mask: (B, T).

    Returns:
        scalar.
    """
    _check_same_shape(values=values, returns=returns, mask=mask)
    values, returns = values.detach(), returns.detach()
    var_returns = masked_var(returns, mask, unbiased=False)
    var_residual = masked_var(returns - values, mask, unbiased=False)
    if var_returns.item() == 0.0:
        return torch.tensor(float("nan"), dtype=values.dtype, device=values.device)
    return 1.0 - var_residual / var_returns


# --------------------------------------------------------------------------------------------------------------
# loss aggregations


def token_mean(loss: torch.Tensor, mask: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Σ_{i,t} m·ℓ / Σ_{i,t} m — every valid token in the batch weighs the same (DAPO).

    Matches TRL GRPO's loss_type="bnpo" on one micro-batch. Over an optimizer step the recipes give
    `Engine.optimizer_step` each micro-batch's token count as its weight, so the step's loss is the sum over
    every response token of all micro-batches and processes divided by their total count: TRL's "dapo" (its
    default). Denominator clamped at 1.
    """
    m = _float_mask(mask, loss)
    return (loss * m).sum() / m.sum().clamp(min=1.0)


def sequence_mean(loss: torch.Tensor, mask: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """mean_i [ Σ_t m·ℓ / Σ_t m ] — mean within each sequence, then over sequences (original GRPO).

    Matches TRL GRPO's loss_type="grpo": per-sequence denominators clamped at 1, so an empty sequence adds 0
    and still counts in the outer mean.
    """
    m = _float_mask(mask, loss)
    return ((loss * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()


def fixed_length_sum(loss: torch.Tensor, mask: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Σ_{i,t} m·ℓ / (B · L_max) — a constant normaliser, no length bias (Dr. GRPO, Liu et al. 2025).

    Matches TRL GRPO's loss_type="dr_grpo" with L_max = max_completion_length. Requires `max_length` ≥ T.
    """
    if max_length is None:
        raise ValueError("aggregation 'fixed-length-sum' needs max_length (the maximum completion length)")
    if max_length < loss.shape[-1]:
        raise ValueError(f"max_length {max_length} is shorter than the sequence length {loss.shape[-1]}")
    m = _float_mask(mask, loss)
    return (loss * m).sum() / (loss.shape[0] * max_length)


AGGREGATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "token-mean": token_mean,
    "sequence-mean": sequence_mean,
    "fixed-length-sum": fixed_length_sum,
}


def aggregate(loss: torch.Tensor, mask: torch.Tensor, name: str = "token-mean", max_length: int | None = None):
    """Reduce per-token losses (B, T) to a scalar with the aggregation called `name` (see AGGREGATIONS).

    Example with ℓ = [[1, 2, 3], [4, 5, 6]], m = [[1, 1, 1], [1, 0, 0]]:
      token-mean       (1+2+3+4)/4 = 2.5
      sequence-mean    (6/3 + 4/1)/2 = 3.0
      fixed-length-sum 10/(2·5) = 1.0 with max_length=5
    """
    fn = _lookup(AGGREGATIONS, name, "aggregation")
    _check_2d("loss", loss)
    _check_same_shape(loss=loss, mask=mask)
    return fn(loss, mask, max_length=max_length)


# --------------------------------------------------------------------------------------------------------------
# KL estimators


def _k1(log_ratio: torch.Tensor) -> torch.Tensor:
    return log_ratio


def _k2(log_ratio: torch.Tensor) -> torch.Tensor:
    return 0.5 * log_ratio**2


def _k3(log_ratio: torch.Tensor) -> torch.Tensor:
    # r = π_ref/π = exp(−log_ratio); k3 = r − 1 − log r ≥ 0, written with expm1 for precision near 0
    neg = -log_ratio
    return torch.expm1(neg) - neg


KL_ESTIMATORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"k1": _k1, "k2": _k2, "k3": _k3}


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(π ‖ π_ref) from samples y ~ π (Schulman, "Approximating KL divergence", 2020).

    With d = log π(y_t) − log π_ref(y_t):
        k1 = d                        unbiased, high variance, can be negative
        k2 = ½ d²                     biased, low variance, ≥ 0
        k3 = exp(−d) − (−d) − 1       unbiased, low variance, ≥ 0 (GRPO's estimator)

    k1 and k3 are TRL PPO's kl_estimator "k1"/"k3"; k3 is exactly TRL GRPO's per_token_kl
    `exp(ref − logp) − (ref − logp) − 1`. k2 is not offered by TRL.

    Args:
        logprobs: (B, T) log π of the sampled tokens.
        ref_logprobs: (B, T) log π_ref of the same tokens.
        estimator: "k1" | "k2" | "k3".

    Returns:
        (B, T), unmasked: aggregate with `aggregate` or multiply by the mask.
    """
    fn = _lookup(KL_ESTIMATORS, estimator, "KL estimator")
    _check_same_shape(logprobs=logprobs, ref_logprobs=ref_logprobs)
    return fn(logprobs - ref_logprobs)


# --------------------------------------------------------------------------------------------------------------
# advantages


def gae_advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over right-padded responses.

        δ_t = r_t + γ V_{t+1} − V_t          (V_{t+1} = 0 past the last valid token)
        A_t = δ_t + γλ A_{t+1}               (A = 0 past the last valid token)
        R_t = A_t + V_t

    Same recursion as TRL's PPO trainer. Differences: TRL zeroes values only from the second padded position on
    (`padding_mask_p1`), so its last valid token bootstraps from the value of the first padded position; here
    every padded reward and value is ignored, the episode ends at the last valid token. Advantages are returned
    unwhitened (TRL whitens them inside the trainer: call `masked_whiten`), and both outputs are 0 on padding.

    Args:
        rewards: (B, T) per-token rewards (e.g. −β·KL per token plus the score on the last token).
        values: (B, T) V(s_t) from the value head.
        mask: (B, T) response mask, right-padded (ones then zeros in every row).
        gamma: discount γ.
        lam: GAE λ.

    Returns:
        advantages: (B, T).
        returns: (B, T), the value-head targets.
    """
    _check_2d("rewards", rewards)
    _check_same_shape(rewards=rewards, values=values, mask=mask)
    m = _float_mask(mask, values)
    if (m[:, 1:] > m[:, :-1]).any():
        raise ValueError("mask must be right-padded: a valid token follows a padded one")
    rewards, values = rewards * m, values * m
    T = rewards.shape[1]
    next_value = torch.zeros_like(values[:, 0])
    next_advantage = torch.zeros_like(values[:, 0])
    advantages = []
    for t in reversed(range(T)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = (delta + gamma * lam * next_advantage) * m[:, t]
        next_value = values[:, t]
        advantages.append(next_advantage)
    advantages = torch.stack(advantages[::-1], dim=1)
    return advantages, (advantages + values) * m


def _group_view(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be (B·K,), got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size != 0:
        raise ValueError(f"{rewards.numel()} rewards cannot be split into groups of {group_size}")
    return rewards.view(-1, group_size)


def _scale_group(centered: torch.Tensor, grouped: torch.Tensor, pool: torch.Tensor, eps: float) -> torch.Tensor:
    if grouped.shape[1] < 2:
        raise ValueError("scale='group' needs group_size ≥ 2 (the group std is undefined for one sample)")
    return centered / (grouped.std(dim=1, keepdim=True) + eps)


def _scale_batch(centered: torch.Tensor, grouped: torch.Tensor, pool: torch.Tensor, eps: float) -> torch.Tensor:
    if pool.numel() < 2:
        raise ValueError("scale='batch' needs at least 2 rewards")
    return centered / (pool.std().to(centered) + eps)


def _scale_none(centered: torch.Tensor, grouped: torch.Tensor, pool: torch.Tensor, eps: float) -> torch.Tensor:
    return centered


GRPO_SCALES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "group": _scale_group,
    "batch": _scale_batch,
    "none": _scale_none,
}


def grpo_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4, batch_rewards: torch.Tensor | None = None
) -> torch.Tensor:
    """Group-relative advantages (GRPO, Shao et al. 2024), one per completion.

        A_i = (r_i − mean_g) / (std + ε)

    with mean_g the mean reward of the K completions of the same prompt and std
      "group": the group's std, unbiased (Bessel, n−1), as TRL's scale_rewards="group" (`nanstd`);
      "batch": the std of the whole batch's rewards, unbiased, as TRL's scale_rewards="batch" —
               `batch_rewards` when given (all processes' rewards, gathered: TRL's global batch),
               else the B·K `rewards` themselves;
      "none":  no division (Dr. GRPO, Liu et al. 2025), as TRL's scale_rewards="none".
    ε = 1e-4 as TRL. Differences: no NaN handling (TRL treats NaN rewards as unscorable), and K=1 with "group"
    raises instead of silently using std 0.

    Args:
        rewards: (B·K,) scalar rewards, group-contiguous (the K samples of prompt j at j·K … j·K+K−1).
        group_size: K.
        scale: "group" | "batch" | "none".
        eps: added to the std.
        batch_rewards: (M,) every reward of the global batch (this process's among them), or None;
            read by "batch" only. Order does not matter.

    Returns:
        (B·K,) advantages; broadcast over tokens by `ppo_clipped_policy_loss`.
    """
    scale_fn = _lookup(GRPO_SCALES, scale, "GRPO scale")
    grouped = _group_view(rewards, group_size)
    centered = grouped - grouped.mean(dim=1, keepdim=True)
    pool = grouped.reshape(-1) if batch_rewards is None else batch_rewards.reshape(-1)
    return scale_fn(centered, grouped, pool, eps).reshape(-1)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """REINFORCE leave-one-out advantages (Kool et al. 2019; Ahmadian et al. 2024).

        A_i = r_i − 1/(K−1) Σ_{j≠i} r_j  =  K/(K−1) · (r_i − mean_g)

    Matches TRL's RLOO baseline `(sum − r)/(K − 1)`. Layout differs from TRL's old RLOOTrainer, which stacks
    rewards sample-major (K, B); here they are group-contiguous (B·K,) as for `grpo_advantages`.

    Args:
        rewards: (B·K,) group-contiguous.
        group_size: K ≥ 2.

    Returns:
        (B·K,).
    """
    if group_size < 2:
        raise ValueError(f"RLOO needs group_size ≥ 2 to leave one out, got {group_size}")
    grouped = _group_view(rewards, group_size)
    baseline = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - baseline).reshape(-1)


def length_debiased_rewards(rewards: torch.Tensor, lengths: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards less the part that is linear in response length within a prompt's group, one slope for
    the whole batch (prefrl's guard against a learned reward model's length bias):

        r'_i = r_i − β (ℓ_i − ℓ̄_g),    β = Σ_i (r_i − r̄_g)(ℓ_i − ℓ̄_g) / Σ_i (ℓ_i − ℓ̄_g)²

    with r̄_g, ℓ̄_g the mean reward and length of row i's group, and both sums over every row of the
    batch. β is the least-squares slope of group-centred reward on group-centred length: what one more
    token is worth to the reward source on these samples, averaged over prompts. A policy can no longer
    gain reward by making every answer longer (β > 0) or shorter (β < 0), while a prompt whose reward
    prefers longer answers *more than the batch does* keeps that preference (a per-group slope would
    erase it, and with it every length-based constraint). Each group's mean reward is unchanged, since
    Σ_{i∈g} (ℓ_i − ℓ̄_g) = 0; so are the group-relative advantages of a batch whose lengths are equal.

    Args:
        rewards: (B·K,) group-contiguous.
        lengths: (B·K,) response lengths (tokens), same order.
        group_size: K.

    Returns:
        (debiased rewards (B·K,), β as a 0-d tensor; 0 when no group has two lengths).
    """
    grouped = _group_view(rewards, group_size).float()
    grouped_lengths = _group_view(lengths.to(grouped.device), group_size).float()
    centred_lengths = grouped_lengths - grouped_lengths.mean(dim=1, keepdim=True)
    centred_rewards = grouped - grouped.mean(dim=1, keepdim=True)
    spread = (centred_lengths**2).sum()
    slope = (centred_rewards * centred_lengths).sum() / spread if spread > 0 else spread.new_zeros(())
    return (grouped - slope * centred_lengths).reshape(-1).to(rewards.dtype), slope


ADVANTAGES: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "grpo": grpo_advantages,
    "rloo": rloo_advantages,
}


# --------------------------------------------------------------------------------------------------------------
# PPO losses


def ppo_clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    aggregation: str = "token-mean",
    clip_eps_high: float | None = None,
    max_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO clipped surrogate (Schulman et al. 2017), with DAPO's asymmetric clip ("clip-higher").

        ρ_t = exp(log π(y_t) − log π_old(y_t))
        ℓ_t = max( −A_t ρ_t , −A_t clip(ρ_t, 1 − ε, 1 + ε_high) )      ε_high = ε when None
        L   = aggregate(ℓ, mask, aggregation)

    Same per-token loss as TRL's PPO (`max(pg_losses, pg_losses2)`) and GRPO (`−min(coef_1·A, coef_2·A)`)
    trainers. Differences: the aggregation is named here (TRL PPO always takes the masked token mean), and
    approx_kl is averaged over valid tokens only (TRL PPO's `.mean()` also counts padding, where the difference is 0).

    Args:
        logprobs: (B, T) log π_θ of the sampled tokens (carries the gradient).
        old_logprobs: (B, T) log π_old from rollout time (no gradient needed).
        advantages: (B, T) per token (GAE) or (B,) per sequence (GRPO/RLOO, broadcast over T).
        mask: (B, T).
        clip_eps: ε (lower clip, and upper when `clip_eps_high` is None).
        aggregation: "token-mean" | "sequence-mean" | "fixed-length-sum".
        clip_eps_high: ε_high (DAPO uses 0.28 with ε = 0.2).
        max_length: for "fixed-length-sum".

    Returns:
        loss: scalar.
        stats: clip_fraction (valid tokens where the clipped branch is strictly larger, i.e. is the one used),
            approx_kl (masked mean of ½(log π − log π_old)², the k2 estimator, as TRL PPO's `approxkl`),
            ratio_mean (masked mean of ρ).
    """
    _check_2d("logprobs", logprobs)
    _check_same_shape(logprobs=logprobs, old_logprobs=old_logprobs, mask=mask)
    if advantages.dim() == 1:
        if advantages.shape[0] != logprobs.shape[0]:
            raise ValueError(
                f"per-sequence advantages {tuple(advantages.shape)} do not match logprobs {tuple(logprobs.shape)}"
            )
        advantages = advantages.unsqueeze(-1)
    else:
        _check_same_shape(advantages=advantages, logprobs=logprobs)
    high = clip_eps if clip_eps_high is None else clip_eps_high
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + high)
    per_token = torch.maximum(unclipped, clipped)
    loss = aggregate(per_token, mask, aggregation, max_length=max_length)
    with torch.no_grad():
        stats = {
            "clip_fraction": masked_mean((clipped > unclipped).to(logprobs.dtype), mask),
            "approx_kl": masked_mean(0.5 * log_ratio**2, mask),
            "ratio_mean": masked_mean(ratio, mask),
        }
    return loss, {k: v.detach() for k, v in stats.items()}


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range_value: float,
    aggregation: str = "token-mean",
    max_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped value-head loss (PPO2 / TRL's PPO `vf_loss`).

        V_clip = clip(V, V_old − c, V_old + c)
        ℓ_t    = ½ max( (V_t − R_t)², (V_clip,t − R_t)² )
        L      = aggregate(ℓ, mask, aggregation)

    Matches TRL PPO's `0.5 · masked_mean(max(vf_losses1, vf_losses2))` for aggregation="token-mean".
    Explained variance is a separate helper (`explained_variance`), since it is NaN when returns are constant.

    Args:
        values: (B, T) V_θ(s_t) (carries the gradient).
        old_values: (B, T) values at rollout time.
        returns: (B, T) targets R_t (e.g. from `gae_advantages`).
        mask: (B, T).
        clip_range_value: c.
        aggregation, max_length: as `aggregate`.

    Returns:
        loss: scalar.
        stats: value_clip_fraction (valid tokens where the clipped error is strictly larger), value_mean.
    """
    _check_2d("values", values)
    _check_same_shape(values=values, old_values=old_values, returns=returns, mask=mask)
    clipped_values = torch.clamp(values, old_values - clip_range_value, old_values + clip_range_value)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    per_token = 0.5 * torch.maximum(unclipped_error, clipped_error)
    loss = aggregate(per_token, mask, aggregation, max_length=max_length)
    with torch.no_grad():
        stats = {
            "value_clip_fraction": masked_mean((clipped_error > unclipped_error).to(values.dtype), mask),
            "value_mean": masked_mean(values, mask),
        }
    return loss, {k: v.detach() for k, v in stats.items()}


# --------------------------------------------------------------------------------------------------------------
# metrics


def policy_entropy_from_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-token entropy of the policy over valid tokens (a metric, detached).

        H_t = logsumexp(z_t) − Σ_v softmax(z_t)_v z_t,v ;   H = Σ m·H / Σ m

    Same per-token formula as TRL's `entropy_from_logits`; here averaged over the masked tokens.

    Args:
        logits: (B, T, V).
        mask: (B, T).

    Returns:
        scalar.
    """
    if logits.dim() != 3 or tuple(logits.shape[:2]) != tuple(mask.shape):
        raise ValueError(
            f"logits must be (B, T, V) matching mask (B, T); got {tuple(logits.shape)} and {tuple(mask.shape)}"
        )
    with torch.no_grad():
        logits = logits.detach().float()
        probs = torch.softmax(logits, dim=-1)
        entropy = torch.logsumexp(logits, dim=-1) - (probs * logits).sum(-1)
        return masked_mean(entropy, mask)
