"""SPPO (paper 003, Wu et al. 2024) and the DPO family it is compared with, on the same generated pairs.

SPPO, iteration t: sample K responses y_1..y_K ~ π_t(·|x), ask the oracle for P(y_k ≻ y_k' | x) for
all pairs (a (B, K, K) matrix), estimate each response's win rate against π_t,

    P̂(y_k ≻ π_t | x) = (1/K) Σ_k' P(y_k ≻ y_k' | x),

keep some responses (the argmax/argmin pair, or all K) and regress the log-ratio onto the
multiplicative-weights target (eq. 3.6, or eq. 3.5 with an estimated log Z).

The functions here are pure: tensors in, `(loss, stats)` out; stats are detached.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------------
# Win rates and the K×K preference matrix
# --------------------------------------------------------------------------------------------------


def _check_square(preference_matrix: torch.Tensor) -> None:
    if preference_matrix.dim() < 2 or preference_matrix.shape[-1] != preference_matrix.shape[-2]:
        raise ValueError(f"preference_matrix must be (..., K, K); got shape {tuple(preference_matrix.shape)}")


def _with_half_diagonal(preference_matrix: torch.Tensor) -> torch.Tensor:
    size = preference_matrix.shape[-1]
    diagonal = torch.eye(size, dtype=torch.bool, device=preference_matrix.device)
    return preference_matrix.masked_fill(diagonal, 0.5)


def win_rate_against_policy(
    preference_matrix: torch.Tensor,
    opponent_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Win rate of every sampled response against the policy that sampled them (SPPO eq. 3.5).

        P̂(y_k ≻ π_t | x) = Σ_k' w_k' P(y_k ≻ y_k' | x),   w_k' = 1/K by default

    With the default weights this is the win rate against the empirical distribution π̂_t^K of the
    K samples. The diagonal of the input is **ignored and replaced by ½** (a response ties with
    itself), so an oracle need not be queried on the K self-pairs and whatever it would say there
    cannot leak in.

    Args:
        preference_matrix: (..., K, K), entry [k, k'] = P(y_k ≻ y_k' | x).
        opponent_weights: (..., K) or (K,) or None; the opponent's probability of each response
            (normalised here). None means uniform: the K samples themselves. A tabular policy can
            pass its own probabilities to get the exact P(y ≻ π | x) = Σ_y' π(y') P(y ≻ y').

    Returns:
        (..., K) win rates in [0, 1].
    """
    _check_square(preference_matrix)
    matrix = _with_half_diagonal(preference_matrix)
    if opponent_weights is None:
        return matrix.mean(dim=-1)
    weights = opponent_weights / opponent_weights.sum(dim=-1, keepdim=True)
    return (matrix * weights.unsqueeze(-2)).sum(dim=-1)


def pointwise_preference_matrix(scores: torch.Tensor) -> torch.Tensor:
    """The K×K matrix a pointwise (Bradley–Terry) oracle implies: K score calls instead of K² pair calls.

        P[k, k'] = σ(s_k − s_k')   (diagonal σ(0) = ½, and P + Pᵀ = 1)

    Args:
        scores: (..., K) scalar scores s(x, y_k).

    Returns:
        (..., K, K) preference probabilities.
    """
    return torch.sigmoid(scores.unsqueeze(-1) - scores.unsqueeze(-2))


def gold_preference_matrix(scores: torch.Tensor) -> torch.Tensor:
    """The K×K matrix of a rule judge: 1 if y_k scores higher, 0 if lower, ½ on a tie.

        P[k, k'] = ½ + ½·sign(s_k − s_k')

    Args:
        scores: (..., K) rule scores.

    Returns:
        (..., K, K) preferences in {0, ½, 1}.
    """
    return 0.5 + 0.5 * torch.sign(scores.unsqueeze(-1) - scores.unsqueeze(-2))


def select_sppo_pairs(win_rates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SPPO's default selection: keep y_w = argmax_k P̂(y_k ≻ π_t) and y_l = argmin_k P̂(y_k ≻ π_t).

    Ties: the winner is the first maximal index and the loser the *last* minimal one, so for K ≥ 2
    the two indices always differ (a row of all-equal win rates gives (0, K−1), both with target 0).

    Args:
        win_rates: (..., K).

    Returns:
        winner_idx, loser_idx: (...,) long indices into the last dimension.
    """
    size = win_rates.shape[-1]
    winner = win_rates.argmax(dim=-1)
    loser = size - 1 - win_rates.flip(-1).argmin(dim=-1)
    return winner, loser


def estimate_log_partition(
    win_rates: torch.Tensor,
    eta: float | torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """log Z_{π_t}(x) = log E_{y~π_t} exp(η P(y ≻ π_t | x)), estimated from the K samples (SPPO eq. 3.5).

        log Ẑ(x) = log (1/K) Σ_k exp(η P̂(y_k ≻ π_t | x)) = logsumexp_k(η P̂_k) − log K

    Since the P̂_k average to ½ over the K samples (P + Pᵀ = 1, diagonal ½), Jensen gives
    log Ẑ ≥ η/2, the constant SPPO uses instead (eq. 3.6), with equality iff every P̂_k = ½.

    Args:
        win_rates: (..., K) P̂ for all K samples of a prompt (not only the kept ones).
        eta: η, a float or a tensor broadcastable against `win_rates` (e.g. (..., 1), one η per row).
        weights: (..., K) or None; probabilities of the responses under π_t when the expectation is
            taken exactly over a finite response set (normalised here). None: the sample mean.

    Returns:
        (...,) log Ẑ.
    """
    scaled = eta * win_rates
    if weights is None:
        return torch.logsumexp(scaled, dim=-1) - math.log(win_rates.shape[-1])
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return torch.logsumexp(scaled + torch.log(weights), dim=-1)


# --------------------------------------------------------------------------------------------------
# SPPO loss
# --------------------------------------------------------------------------------------------------


def sppo_loss(
    policy_logprobs: torch.Tensor,
    reference_logprobs: torch.Tensor,
    win_rates: torch.Tensor,
    eta: float | torch.Tensor,
    log_partition: torch.Tensor | float | None = None,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SPPO's square loss: regress log π(y|x)/π_t(y|x) onto the multiplicative-weights target.

        eq. 3.6 (default):         ℓ = mean_y [ (log π(y|x) − log π_t(y|x) − η (P̂(y ≻ π_t|x) − ½))² ]
        eq. 3.5 (log_partition):   ℓ = mean_y [(log π(y|x) − log π_t(y|x) − (η P̂(y ≻ π_t|x) − log Z))²]

    The minimiser over all policies of eq. 3.5 (with the exact log Z) is the multiplicative-weights
    step π_{t+1}(y) ∝ π_t(y) exp(η P(y ≻ π_t)) (eq. 3.1); eq. 3.6 replaces log Z by its lower bound
    η/2 (see `estimate_log_partition`). Log-probs are sequence sums over response tokens; η = 1/β
    (the official β = 1e-3). The reference log-probs and the target are constants: sg(·).

    Args:
        policy_logprobs: (N,) or (B, K) log π_θ(y|x), with grad.
        reference_logprobs: same shape, log π_t(y|x) of the snapshot that sampled y.
        win_rates: same shape, P̂(y ≻ π_t | x).
        eta: η (> 0 in the paper), a float or a tensor broadcastable against `win_rates`.
        log_partition: None for eq. 3.6; else log Z(x) per prompt for eq. 3.5, a float, or a
            tensor of the leading dims of `policy_logprobs` ((B,) for (B, K) inputs, (N,) for (N,)).
        weights: same shape or None; per-sample weights or a 0/1 mask of kept responses.
            None: plain mean over samples.

    Returns:
        loss: scalar.
        stats: log_ratio (mean log π − log π_t), target (mean target), win_rate (mean P̂), loss.
    """
    if not (policy_logprobs.shape == reference_logprobs.shape == win_rates.shape):
        raise ValueError(
            "policy_logprobs, reference_logprobs and win_rates must share a shape; got "
            f"{tuple(policy_logprobs.shape)}, {tuple(reference_logprobs.shape)}, {tuple(win_rates.shape)}"
        )
    log_ratio = policy_logprobs - reference_logprobs.detach()
    if log_partition is None:
        target = eta * (win_rates - 0.5)
    else:
        log_z = torch.as_tensor(log_partition, dtype=log_ratio.dtype, device=log_ratio.device)
        log_z = log_z.reshape(log_z.shape + (1,) * (log_ratio.dim() - log_z.dim()))
        target = eta * win_rates - log_z
    target = target.detach()
    squared = (log_ratio - target) ** 2
    if weights is None:
        loss = squared.mean()
    else:
        loss = (weights * squared).sum() / weights.sum()
    stats = {
        "log_ratio": log_ratio.mean().detach(),
        "target": target.mean(),
        "win_rate": win_rates.mean().detach(),
        "loss": loss.detach(),
    }
    return loss, stats


# --------------------------------------------------------------------------------------------------
# DPO family (baselines on the same pairs)
# --------------------------------------------------------------------------------------------------

# A pairwise loss maps (chosen log-ratio, rejected log-ratio, β, ε) to the per-pair loss (B,).
PairLoss = Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor]


def _sigmoid_loss(chosen_logratios, rejected_logratios, beta, label_smoothing):
    """DPO: −(1−ε) log σ(βh) − ε log σ(−βh), h = chosen − rejected log-ratio (ε: conservative DPO)."""
    logits = chosen_logratios - rejected_logratios
    return -(1 - label_smoothing) * F.logsigmoid(beta * logits) - label_smoothing * F.logsigmoid(-beta * logits)


def _ipo_loss(chosen_logratios, rejected_logratios, beta, label_smoothing):
    """IPO (Azar et al. 2023, eq. 17 with τ = β): (h − 1/(2β))²."""
    logits = chosen_logratios - rejected_logratios
    return (logits - 1 / (2 * beta)) ** 2


def _sppo_hard_loss(chosen_logratios, rejected_logratios, beta, label_smoothing):
    """TRL's `sppo_hard`: eq. 3.6 with P̂ = 1 for the winner and 0 for the loser, η = 1/β:
    (log-ratio_w − 1/(2β))² + (log-ratio_l + 1/(2β))²."""
    return (chosen_logratios - 0.5 / beta) ** 2 + (rejected_logratios + 0.5 / beta) ** 2


DPO_LOSSES: dict[str, PairLoss] = {
    "sigmoid": _sigmoid_loss,
    "ipo": _ipo_loss,
    "sppo_hard": _sppo_hard_loss,
}
_SMOOTHABLE = {"sigmoid"}
# Losses that read per-token mean log-probs instead of sums (TRL's IPO divides by the completion length).
LENGTH_AVERAGED_LOSSES = frozenset({"ipo"})


def pair_sequence_logps(logprob_sums: torch.Tensor, lengths: torch.Tensor, loss_type: str) -> torch.Tensor:
    """The sequence log-prob a DPO-family loss reads, from summed token log-probs and lengths.

        sigmoid, sppo_hard:  log π(y|x) = Σ_t log π(y_t | x, y_<t)
        ipo:                 (1/|y|) Σ_t log π(y_t | x, y_<t)      (as TRL's DPOTrainer for IPO)

    One rule for every caller (the `dpo` recipe and SPPO's DPO-family losses on generated pairs),
    applied alike to policy and reference log-probs. Lengths are clamped at 1 (an empty response
    keeps its sum, 0).

    Args:
        logprob_sums: (...,) Σ_t log π over each response's tokens.
        lengths: same shape, the number of response tokens.
        loss_type: a key of `DPO_LOSSES`.
    """
    if loss_type in LENGTH_AVERAGED_LOSSES:
        return logprob_sums / lengths.to(logprob_sums.dtype).clamp(min=1)
    return logprob_sums


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DPO-family pairwise losses on log-ratios ρ± = log π(y±|x) − log π_ref(y±|x), h = ρ⁺ − ρ⁻.

        sigmoid   (DPO, Rafailov et al. 2023; cDPO with ε):  −(1−ε) log σ(βh) − ε log σ(−βh)
        ipo       (Azar et al. 2023, τ = β):                   (h − 1/(2β))²
        sppo_hard (TRL DPOTrainer, loss_type="sppo_hard"):    (ρ⁺ − 1/(2β))² + (ρ⁻ + 1/(2β))²

    `sppo_hard` is TRL's definition (trl 1.16, DPOTrainer: winner_margin_error + loser_margin_error):
    SPPO's eq. 3.6 with η = 1/β and the hard probabilities P̂ = 1 for the winner, 0 for the loser.
    The loss is the mean over pairs. Log-probs are used as given; recipes build them with
    `pair_sequence_logps` (sums, or per-token means for IPO as TRL).
    Label smoothing (ε ∈ [0, ½)) is the conservative-DPO form and applies to `sigmoid` only
    (TRL 1.16 uses ε only in its `robust`/`exo_pair` losses). The reference log-probs are sg(·).

    Args:
        policy_chosen_logps, policy_rejected_logps: (B,) log π_θ(y±|x), with grad.
        ref_chosen_logps, ref_rejected_logps: (B,) log π_ref(y±|x).
        beta: β > 0.
        loss_type: a key of `DPO_LOSSES`.
        label_smoothing: ε, sigmoid only.

    Returns:
        loss: scalar.
        stats: chosen_reward / rejected_reward (means of the implicit rewards β·ρ±), reward_accuracy
            (fraction with βρ⁺ > βρ⁻), reward_margin (mean β·h).
    """
    if loss_type not in DPO_LOSSES:
        raise ValueError(f"unknown DPO loss_type {loss_type!r}; valid: {sorted(DPO_LOSSES)}")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    if label_smoothing and loss_type not in _SMOOTHABLE:
        raise ValueError(f"label_smoothing applies only to {sorted(_SMOOTHABLE)}, not {loss_type!r}")
    chosen_logratios = policy_chosen_logps - ref_chosen_logps.detach()
    rejected_logratios = policy_rejected_logps - ref_rejected_logps.detach()
    loss = DPO_LOSSES[loss_type](chosen_logratios, rejected_logratios, beta, label_smoothing).mean()
    chosen_rewards = (beta * chosen_logratios).detach()
    rejected_rewards = (beta * rejected_logratios).detach()
    stats = {
        "chosen_reward": chosen_rewards.mean(),
        "rejected_reward": rejected_rewards.mean(),
        "reward_accuracy": (chosen_rewards > rejected_rewards).float().mean(),
        "reward_margin": (chosen_rewards - rejected_rewards).mean(),
    }
    return loss, stats
