"""Dual-Weighted Reinforcement Learning (DWRL) for a dialog generative preference model (paper 000).

The dialog GPM scores a response y for a prompt x in two turns: it first writes a thought o ~ π(o|x,y),
then reads π(a|x,y,o), the probability of the answer "Yes". With the thought a latent variable,

    p± = E_{o ~ π(·|x,y±)} [ π(a|x,y±,o) ],        p(y⁺ ≻ y⁻ | x) = p⁺ / (p⁺ + p⁻),

and the gradient of the Bradley–Terry negative log-likelihood ℓ = −log p(y⁺ ≻ y⁻ | x) is

    ∇ℓ = −w (∇log p⁺ − ∇log p⁻),        w = p⁻ / (p⁺ + p⁻)   (the model's probability of the wrong order),
    ∇log p = E_o[ π(a|o) (∇log π(a|o) + ∇log π(o)) ] / E_o[ π(a|o) ]
           ≈ Σᵢ ω̃ᵢ (∇log π(a|oᵢ) + ∇log π(oᵢ)),   ω̃ᵢ = π(a|oᵢ) / Σⱼ π(a|oⱼ),   oᵢ ~ π_old(·|x,y), i = 1..n.

Both weights are stop-gradient: w is the instance-wise misalignment weight, ω̃ the group-wise
(self-normalised) conditional preference score. The estimator is self-normalised, so it is biased for
small n (at n = 1, ω̃ = 1) and consistent as n → ∞.

Every function here is batched over pairs. Shapes: B pairs, n thoughts per response.
`answer_logprobs_*` (B, n) hold log π(a|x,y±,o±ᵢ); `thought_logprobs_*` (B, n) hold log π(o±ᵢ|x,y±)
summed over the thought's tokens. The recipe's thought step is `dwrl_thought_loss`: the shared
PPO-clip loss of `objectives/policy.py` on one ratio per thought, with the advantages from
`dwrl_thought_advantages`.
"""

from __future__ import annotations

import math

import torch

from prefrl.objectives.policy import ppo_clipped_policy_loss


def _check_pair_shapes(pos: torch.Tensor, neg: torch.Tensor, what: str) -> None:
    if pos.dim() != 2 or pos.shape != neg.shape:
        raise ValueError(
            f"{what}: expected two (B, n) tensors of the same shape, got {tuple(pos.shape)} and {tuple(neg.shape)}"
        )
    if pos.shape[1] < 1:
        raise ValueError(f"{what}: need at least one thought per response (n ≥ 1), got shape {tuple(pos.shape)}")


def _log_mean_exp(logprobs: torch.Tensor) -> torch.Tensor:
    """log( (1/n) Σᵢ exp(logprobsᵢ) ) over the last dim, stably: logsumexp − log n. (B, n) -> (B,)."""
    return torch.logsumexp(logprobs, dim=-1) - math.log(logprobs.shape[-1])


def misalignment_weight(
    answer_logprobs_pos: torch.Tensor,
    answer_logprobs_neg: torch.Tensor,
    use_weight: bool = True,
) -> torch.Tensor:
    """Instance-wise misalignment weight w = sg( p̂⁻ / (p̂⁺ + p̂⁻) ), p̂± = (1/n) Σᵢ π(a|x,y±,o±ᵢ).

    w is the model's Monte-Carlo estimate of p(y⁺ ≺ y⁻ | x): large on pairs it orders wrongly. It is
    computed as σ(log p̂⁻ − log p̂⁺) with log p̂ = logsumexp(log π(a|oᵢ)) − log n, which stays finite when
    every π(a|oᵢ) underflows in probability space.

    Args:
        answer_logprobs_pos: (B, n) log π(a|x,y⁺,o⁺ᵢ).
        answer_logprobs_neg: (B, n) log π(a|x,y⁻,o⁻ᵢ).
        use_weight: False gives w = 1 (the paper's "no misalignment weight" ablation).

    Returns:
        (B,) detached weights in (0, 1), or ones.
    """
    _check_pair_shapes(answer_logprobs_pos, answer_logprobs_neg, "misalignment_weight")
    if not use_weight:
        return torch.ones(
            answer_logprobs_pos.shape[0], dtype=answer_logprobs_pos.dtype, device=answer_logprobs_pos.device
        )
    with torch.no_grad():
        log_p_pos = _log_mean_exp(answer_logprobs_pos)
        log_p_neg = _log_mean_exp(answer_logprobs_neg)
        return torch.sigmoid(log_p_neg - log_p_pos)


def group_scores(answer_logprobs: torch.Tensor) -> torch.Tensor:
    """Group-wise self-normalised conditional preference score ω̃ᵢ = sg( π(a|x,y,oᵢ) / Σⱼ π(a|x,y,oⱼ) ).

    Equal to softmax over the n thoughts of log π(a|x,y,oᵢ).

    Args:
        answer_logprobs: (B, n) log π(a|x,y,oᵢ) for the n thoughts of one response per row.

    Returns:
        (B, n) detached scores, each row summing to 1.
    """
    if answer_logprobs.dim() != 2:
        raise ValueError(f"group_scores: expected a (B, n) tensor, got shape {tuple(answer_logprobs.shape)}")
    return torch.softmax(answer_logprobs.detach(), dim=-1)


def group_score_entropy(scores: torch.Tensor) -> torch.Tensor:
    """Entropy −Σᵢ ω̃ᵢ log ω̃ᵢ of each row of group scores (0 log 0 = 0), for logging.

    log n when all thoughts score alike; 0 when one thought takes all the weight.

    Args:
        scores: (B, n) rows summing to 1.

    Returns:
        (B,) entropies in nats.
    """
    return -torch.special.xlogy(scores, scores).sum(dim=-1)


def dwrl_scoring_loss(
    answer_logprobs_pos: torch.Tensor,
    answer_logprobs_neg: torch.Tensor,
    weight: torch.Tensor,
    scores_pos: torch.Tensor,
    scores_neg: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scoring step of DWRL (paper Eq. 14): fixed thoughts, weighted log-likelihood of the answer.

        L_score = −mean_B  w · Σᵢ [ ω̃⁺ᵢ log π(a|x,y⁺,o⁺ᵢ) − ω̃⁻ᵢ log π(a|x,y⁻,o⁻ᵢ) ]

    Its gradient is the ∇log π(a|o) half of the DWRL estimate −w(∇log p⁺ − ∇log p⁻). `weight` and the
    scores are treated as constants (detached here too).

    Args:
        answer_logprobs_pos: (B, n) log π(a|x,y⁺,o⁺ᵢ), with grad.
        answer_logprobs_neg: (B, n) log π(a|x,y⁻,o⁻ᵢ), with grad.
        weight: (B,) w from `misalignment_weight`.
        scores_pos: (B, n) ω̃⁺ from `group_scores`.
        scores_neg: (B, n) ω̃⁻ from `group_scores`.

    Returns:
        loss: scalar.
        stats: p_pos, p_neg (means of p̂±), accuracy (fraction with p̂⁺ > p̂⁻), weight (mean w),
            score_entropy_pos, score_entropy_neg (means of the ω̃ entropies).
    """
    _check_pair_shapes(answer_logprobs_pos, answer_logprobs_neg, "dwrl_scoring_loss answer log-probs")
    _check_pair_shapes(scores_pos, scores_neg, "dwrl_scoring_loss scores")
    if scores_pos.shape != answer_logprobs_pos.shape or weight.shape != answer_logprobs_pos.shape[:1]:
        raise ValueError(
            "dwrl_scoring_loss: scores must be (B, n) and weight (B,) like the answer log-probs "
            f"{tuple(answer_logprobs_pos.shape)}; got scores {tuple(scores_pos.shape)}, weight {tuple(weight.shape)}"
        )
    weight, scores_pos, scores_neg = weight.detach(), scores_pos.detach(), scores_neg.detach()
    per_pair = (scores_pos * answer_logprobs_pos).sum(-1) - (scores_neg * answer_logprobs_neg).sum(-1)
    loss = -(weight * per_pair).mean()
    with torch.no_grad():
        log_p_pos = _log_mean_exp(answer_logprobs_pos)
        log_p_neg = _log_mean_exp(answer_logprobs_neg)
        stats = {
            "p_pos": log_p_pos.exp().mean(),
            "p_neg": log_p_neg.exp().mean(),
            "accuracy": (log_p_pos > log_p_neg).float().mean(),
            "weight": weight.mean(),
            "score_entropy_pos": group_score_entropy(scores_pos).mean(),
            "score_entropy_neg": group_score_entropy(scores_neg).mean(),
        }
    return loss, stats


def dwrl_thought_advantages(
    weight: torch.Tensor,
    scores_pos: torch.Tensor,
    scores_neg: torch.Tensor,
    subtract_baseline: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages of the thought step (paper Eq. 15), for the PPO-clip loss on ρᵢ = π(oᵢ)/π_old(oᵢ).

        A⁺ᵢ = +w (ω̃⁺ᵢ − b),    A⁻ᵢ = −w (ω̃⁻ᵢ − b),    b = 1/n (subtract_baseline) or 0.

    Thoughts that make y⁺ look good and thoughts that make y⁻ look bad are reinforced. Since the ω̃
    of a group sum to 1, b = 1/n makes each group's advantages sum to 0. The baseline does not change
    the expected gradient in the limit: b is a constant and E_{o~π}[∇log π(o)] = 0. It lowers the
    variance, and at n = 1 it zeroes the thought term (a single thought cannot be compared with others).

    Args:
        weight: (B,) misalignment weight w.
        scores_pos: (B, n) ω̃⁺.
        scores_neg: (B, n) ω̃⁻.
        subtract_baseline: subtract b = 1/n (default) or use the raw scores.

    Returns:
        adv_pos: (B, n) detached advantages for the thoughts of y⁺.
        adv_neg: (B, n) detached advantages for the thoughts of y⁻.
    """
    _check_pair_shapes(scores_pos, scores_neg, "dwrl_thought_advantages")
    if weight.shape != scores_pos.shape[:1]:
        raise ValueError(
            f"dwrl_thought_advantages: weight must be (B,) = ({scores_pos.shape[0]},), got {tuple(weight.shape)}"
        )
    baseline = 1.0 / scores_pos.shape[1] if subtract_baseline else 0.0
    w = weight.detach().unsqueeze(-1)
    adv_pos = w * (scores_pos.detach() - baseline)
    adv_neg = -w * (scores_neg.detach() - baseline)
    return adv_pos, adv_neg


def dwrl_surrogate_loss(
    answer_logprobs_pos: torch.Tensor,
    answer_logprobs_neg: torch.Tensor,
    thought_logprobs_pos: torch.Tensor,
    thought_logprobs_neg: torch.Tensor,
    weight: torch.Tensor,
    scores_pos: torch.Tensor,
    scores_neg: torch.Tensor,
    subtract_baseline: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Unclipped DWRL surrogate whose gradient is the full DWRL estimate of ∇ℓ (at ρ = 1).

        L = L_score − mean_B Σᵢ [ A⁺ᵢ log π(o⁺ᵢ|x,y⁺) + A⁻ᵢ log π(o⁻ᵢ|x,y⁻) ]
        ∇L = −mean_B w · ( Σᵢ ω̃⁺ᵢ (∇log π(a|o⁺ᵢ) + ∇log π(o⁺ᵢ)) − Σᵢ ω̃⁻ᵢ (∇log π(a|o⁻ᵢ) + ∇log π(o⁻ᵢ)) )

    (with ω̃ − b in the thought term; see `dwrl_thought_advantages`), with L_score from
    `dwrl_scoring_loss` and A± from `dwrl_thought_advantages`. The training recipe does not use this
    loss directly: it splits it into its two alternating steps, (1) `dwrl_scoring_loss` on fixed
    thoughts, (2) recompute w and ω̃ with the updated model, (3) PPO-clip on the thought term with A±.
    It is the reference for the estimator test, and a one-step variant.

    Args:
        answer_logprobs_pos, answer_logprobs_neg: (B, n) log π(a|x,y±,o±ᵢ), with grad.
        thought_logprobs_pos, thought_logprobs_neg: (B, n) log π(o±ᵢ|x,y±) summed over thought tokens, with grad.
        weight: (B,) w.
        scores_pos, scores_neg: (B, n) ω̃±.
        subtract_baseline: b = 1/n in the advantages (default) or 0.

    Returns:
        loss: scalar.
        stats: those of `dwrl_scoring_loss`, plus scoring_loss and thought_loss (the two terms).
    """
    _check_pair_shapes(thought_logprobs_pos, thought_logprobs_neg, "dwrl_surrogate_loss thought log-probs")
    if thought_logprobs_pos.shape != answer_logprobs_pos.shape:
        raise ValueError(
            f"dwrl_surrogate_loss: thought log-probs {tuple(thought_logprobs_pos.shape)} and answer log-probs "
            f"{tuple(answer_logprobs_pos.shape)} must both be (B, n)"
        )
    scoring_loss, stats = dwrl_scoring_loss(answer_logprobs_pos, answer_logprobs_neg, weight, scores_pos, scores_neg)
    adv_pos, adv_neg = dwrl_thought_advantages(weight, scores_pos, scores_neg, subtract_baseline)
    thought_loss = -((adv_pos * thought_logprobs_pos).sum(-1) + (adv_neg * thought_logprobs_neg).sum(-1)).mean()
    stats = {**stats, "scoring_loss": scoring_loss.detach(), "thought_loss": thought_loss.detach()}
    return scoring_loss + thought_loss, stats


def dwrl_thought_loss(
    thought_logprobs: torch.Tensor,
    old_thought_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    num_pairs: int,
    clip_eps: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Thought step of DWRL (paper Eq. 15): PPO-clip with one ratio per thought, not one per token.

        ρᵢ = π(oᵢ|x,y) / π_old(oᵢ|x,y)            (log-probs summed over the thought's tokens)
        L_thought = (1/B) Σᵢ max( −Aᵢ ρᵢ , −Aᵢ clip(ρᵢ, 1 − ε, 1 + ε) )

    summed over the 2n thoughts of each pair and averaged over the B pairs, with Aᵢ = +w(ω̃⁺ᵢ − b)
    for thoughts of y⁺ and −w(ω̃⁻ᵢ − b) for thoughts of y⁻ (`dwrl_thought_advantages`). At ρ = 1 its
    gradient is the thought term of the DWRL estimate (`dwrl_surrogate_loss`).

    Args:
        thought_logprobs: (R,) log π(oᵢ|x,y) of every thought row (R = 2·B·n), with grad.
        old_thought_logprobs: (R,) log π_old(oᵢ|x,y) from sampling time.
        advantages: (R,) Aᵢ per thought row (detached).
        num_pairs: B, the pairs the R rows belong to.
        clip_eps: ε.

    Returns:
        loss: scalar.
        stats: clip_fraction, approx_kl, ratio_mean over the thoughts (as `ppo_clipped_policy_loss`).
    """
    if thought_logprobs.dim() != 1 or old_thought_logprobs.shape != thought_logprobs.shape or advantages.shape != thought_logprobs.shape:
        raise ValueError(
            "dwrl_thought_loss: thought log-probs, old log-probs and advantages must all be (R,); got "
            f"{tuple(thought_logprobs.shape)}, {tuple(old_thought_logprobs.shape)}, {tuple(advantages.shape)}"
        )
    thoughts = thought_logprobs[:, None]  # (R, 1): each thought is a one-"token" sequence
    loss, stats = ppo_clipped_policy_loss(
        thoughts, old_thought_logprobs[:, None], advantages, torch.ones_like(thoughts),
        clip_eps=clip_eps, aggregation="fixed-length-sum", max_length=1,
    )
    # fixed-length-sum divides by the number of thoughts R; rescaled, it is the sum over each pair's
    # thoughts averaged over pairs.
    return loss * (thoughts.shape[0] / num_pairs), stats
