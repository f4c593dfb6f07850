"""The DWRL gradient estimator against the exact gradient of a toy model with enumerable thoughts.

Toy dialog GPM, parameters φ = (θ, u), for P pairs and M possible thoughts:
    π(o | y)    = softmax(θ_y)[o]           θ: (P, 2, M), one logit vector per response (0 = y⁺, 1 = y⁻)
    π(a | y, o) = σ(u_{y,o})                 u: (P, 2, M)
so p± = Σ_o π(o|y±) σ(u_{y±,o}) exactly, and ℓ = mean_P −log(p⁺ / (p⁺ + p⁻)) has an exact gradient by
autograd over the enumeration.

The estimator samples n thoughts per response from π(o|y), computes w and ω̃ with the library and
differentiates `dwrl_surrogate_loss` (ρ = 1). R independent repetitions are the batch: the surrogate is
a mean over its batch, so one gradient of the (R·P)-pair batch is the R-average of the per-repetition
estimates. Being self-normalised (ω̃ and w are ratios of sample means), the estimator is biased for
small n; the bias shrinks as n grows, which is the trend asserted here.

The three pairs have different misalignment weights (≈ 0.71, 0.50, 0.36): with a single pair, dropping
w would only rescale the gradient; across pairs it reweights them and changes the direction.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from prefrl.objectives.dwrl import (
    dwrl_scoring_loss,
    dwrl_surrogate_loss,
    dwrl_thought_advantages,
    group_scores,
    misalignment_weight,
)

DTYPE = torch.float64
THOUGHT_COUNTS = (1, 4, 16, 64)
REPETITIONS = 200
SEED = 0

# Acceptance thresholds. Over seeds 0–19, the correct estimator at n = 64, R = 200 has cosine ≥ 0.9987 and
# relative error ≤ 0.053 (both baseline modes; seed 0: 0.9998 / 0.022 with the baseline), and the relative
# error falls monotonically over n = 1, 4, 16, 64 for every seed. The broken estimators stay at cosine
# ≤ 0.966 and relative error ≥ 0.73 at n = 64, so 0.99 / 0.10 separates the two with margin on both sides.
MIN_COSINE = 0.99
MAX_RELATIVE_ERROR = 0.10

# pair 0: y⁺ looks worse than y⁻ (w ≈ 0.71); pair 1: about even (w ≈ 0.50); pair 2: right order (w ≈ 0.36)
THETA = [
    [[0.5, 0.0, -0.5, 0.2], [0.0, 0.3, -0.2, 0.1]],
    [[0.0, 0.4, 0.1, -0.3], [0.2, -0.1, 0.0, 0.3]],
    [[-0.2, 0.3, 0.0, 0.1], [0.4, 0.0, -0.4, 0.2]],
]
U = [
    [[-2.0, -0.5, 1.0, -1.5], [1.5, 0.5, -1.0, 2.0]],
    [[1.0, -1.0, 0.5, -0.5], [0.5, -0.5, 1.0, -1.0]],
    [[2.0, 1.0, -0.5, 1.5], [-1.5, 0.0, -2.0, 1.0]],
]

BREAKAGES = ("wrong_sign_thought_term", "no_misalignment_weight", "no_thought_term")


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tensors here are tiny; on a busy CPU intra-op threads only add synchronisation (≈ 100× slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _parameters(num_pairs: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    theta = torch.tensor(THETA, dtype=DTYPE)[:num_pairs].clone().requires_grad_(True)
    u = torch.tensor(U, dtype=DTYPE)[:num_pairs].clone().requires_grad_(True)
    return theta, u


def _flat(grads) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


def exact_pair_nll(theta: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """ℓ = mean_P −log(p⁺ / (p⁺ + p⁻)), p± = Σ_o softmax(θ±)[o] σ(u±_o) enumerated exactly."""
    p = (torch.softmax(theta, -1) * torch.sigmoid(u)).sum(-1)  # (P, 2)
    return -(p[:, 0].log() - p.sum(-1).log()).mean()


def exact_gradient(num_pairs: int | None = None) -> torch.Tensor:
    theta, u = _parameters(num_pairs)
    return _flat(torch.autograd.grad(exact_pair_nll(theta, u), (theta, u)))


def _sampled_logprobs(theta, u, n, repetitions, seed):
    """Sample n thoughts per response and repetition; return (B, n) answer and thought log-probs, B = R·P."""
    P, _, M = theta.shape
    generator = torch.Generator().manual_seed(seed)
    probs = torch.softmax(theta.detach(), -1).reshape(P * 2, M).repeat(repetitions, 1)  # π_old = π
    thoughts = torch.multinomial(probs, n, replacement=True, generator=generator).reshape(repetitions, P, 2, n)
    thought_lp = torch.log_softmax(theta, -1).expand(repetitions, P, 2, M).gather(-1, thoughts)  # log π(o|y)
    answer_lp = F.logsigmoid(u).expand(repetitions, P, 2, M).gather(-1, thoughts)  # log π(a|y,o)

    def split(x):
        return x[:, :, 0].reshape(repetitions * P, n), x[:, :, 1].reshape(repetitions * P, n)

    return split(answer_lp), split(thought_lp)


@functools.lru_cache(maxsize=None)
def dwrl_gradient_estimate(
    n: int,
    repetitions: int = REPETITIONS,
    seed: int = SEED,
    subtract_baseline: bool = True,
    breakage: str | None = None,
    num_pairs: int | None = None,
) -> torch.Tensor:
    """R-averaged DWRL estimate of ∇ℓ, optionally deliberately broken (one of BREAKAGES).

    Deterministic given its arguments (seeded generator), so it is cached; callers must not modify the result.
    """
    theta, u = _parameters(num_pairs)
    (ans_pos, ans_neg), (th_pos, th_neg) = _sampled_logprobs(theta, u, n, repetitions, seed)
    weight = misalignment_weight(ans_pos, ans_neg, use_weight=breakage != "no_misalignment_weight")
    scores_pos, scores_neg = group_scores(ans_pos), group_scores(ans_neg)
    if breakage is None or breakage == "no_misalignment_weight":
        loss, _ = dwrl_surrogate_loss(
            ans_pos, ans_neg, th_pos, th_neg, weight, scores_pos, scores_neg, subtract_baseline
        )
    elif breakage == "no_thought_term":
        loss, _ = dwrl_scoring_loss(ans_pos, ans_neg, weight, scores_pos, scores_neg)
    elif breakage == "wrong_sign_thought_term":
        scoring, _ = dwrl_scoring_loss(ans_pos, ans_neg, weight, scores_pos, scores_neg)
        adv_pos, adv_neg = dwrl_thought_advantages(weight, scores_pos, scores_neg, subtract_baseline)
        loss = scoring + ((adv_pos * th_pos).sum(-1) + (adv_neg * th_neg).sum(-1)).mean()  # sign flipped
    else:
        raise ValueError(breakage)
    return _flat(torch.autograd.grad(loss, (theta, u), materialize_grads=True))


def cosine_and_relative_error(grad_est: torch.Tensor, grad_exact: torch.Tensor) -> tuple[float, float]:
    cosine = F.cosine_similarity(grad_est, grad_exact, dim=0).item()
    relative_error = ((grad_est - grad_exact).norm() / grad_exact.norm()).item()
    return cosine, relative_error


def estimator_matches_exact(grad_est: torch.Tensor, grad_exact: torch.Tensor) -> bool:
    """Acceptance check: same direction (cosine) and same size (relative error) as the exact gradient."""
    cosine, relative_error = cosine_and_relative_error(grad_est, grad_exact)
    return cosine > MIN_COSINE and relative_error < MAX_RELATIVE_ERROR


@functools.lru_cache(maxsize=None)
def _table(subtract_baseline: bool, breakage: str | None) -> dict[int, tuple[float, float]]:
    grad_exact = exact_gradient()
    rows = {
        n: cosine_and_relative_error(
            dwrl_gradient_estimate(n, subtract_baseline=subtract_baseline, breakage=breakage), grad_exact
        )
        for n in THOUGHT_COUNTS
    }
    label = f"estimator={breakage or 'correct'} baseline={'1/n' if subtract_baseline else 'none'} R={REPETITIONS}"
    print(f"\n{label}\n{'n':>4} {'cosine':>8} {'rel.err':>8}")
    for n, (cosine, relative_error) in rows.items():
        print(f"{n:>4} {cosine:8.4f} {relative_error:8.4f}")
    return rows


def test_toy_setup_has_informative_gradient():
    theta, u = _parameters()
    p = (torch.softmax(theta, -1) * torch.sigmoid(u)).sum(-1).detach()
    w = p[:, 1] / p.sum(-1)
    # pairs with clearly different misalignment weights, the first one misordered
    assert w[0] > 0.65 and w[2] < 0.4 and (w.max() - w.min()) > 0.3
    grads = torch.autograd.grad(exact_pair_nll(theta, u), (theta, u))
    # both halves of the gradient matter: dropping or flipping the thought half must show
    assert grads[0].norm() > 0.5 * grads[1].norm() and grads[1].norm() > 0.05


def test_exact_weights_give_the_exact_gradient():
    """The n → ∞ limit of the estimator, checked exactly: enumerate all M thoughts with ω_o = π(o)π(a|o)/p.

    Feeding log π(o) + log π(a|o) as "answer log-probs" to `group_scores` gives ω_o = π(o)π(a|o)/p and to
    `misalignment_weight` gives w = p⁻/(p⁺+p⁻) (the common factor 1/M cancels). Then ∇ of the surrogate
    with raw ω (b = 0: over a uniform enumeration Σ_o ∇log π(o) / M is not zero) is exactly
    −w(∇log p⁺ − ∇log p⁻) = ∇ℓ.
    """
    theta, u = _parameters()
    log_pi_o, log_pi_a = torch.log_softmax(theta, -1), F.logsigmoid(u)
    joint = (log_pi_o + log_pi_a).detach()
    weight = misalignment_weight(joint[:, 0], joint[:, 1])
    scores_pos, scores_neg = group_scores(joint[:, 0]), group_scores(joint[:, 1])
    loss, _ = dwrl_surrogate_loss(
        log_pi_a[:, 0], log_pi_a[:, 1], log_pi_o[:, 0], log_pi_o[:, 1], weight, scores_pos, scores_neg,
        subtract_baseline=False,
    )
    grad = _flat(torch.autograd.grad(loss, (theta, u)))
    torch.testing.assert_close(grad, exact_gradient(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("subtract_baseline", [True, False], ids=["baseline", "raw"])
def test_estimator_converges_to_exact_gradient(subtract_baseline):
    """Both forms are consistent: b = 1/n is a constant and E_{o~π}[∇log π(o)] = 0, so subtracting it
    leaves the expected thought gradient unchanged in the limit (at finite n, w and ω̃ are sample ratios
    and the estimator is biased either way; at n = 1 with the baseline the thought term is exactly 0)."""
    rows = _table(subtract_baseline, None)
    grad_exact = exact_gradient()
    largest = THOUGHT_COUNTS[-1]
    cosine, relative_error = rows[largest]
    assert cosine > MIN_COSINE and relative_error < MAX_RELATIVE_ERROR
    assert estimator_matches_exact(dwrl_gradient_estimate(largest, subtract_baseline=subtract_baseline), grad_exact)
    errors = [rows[n][1] for n in THOUGHT_COUNTS]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 4
    # n = 1 is far off: the bias of the self-normalised estimator is real, not noise
    assert not estimator_matches_exact(dwrl_gradient_estimate(1, subtract_baseline=subtract_baseline), grad_exact)


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_broken_estimator_fails_acceptance(breakage):
    _table(True, breakage)
    grad_exact = exact_gradient()
    largest = THOUGHT_COUNTS[-1]
    assert estimator_matches_exact(dwrl_gradient_estimate(largest), grad_exact)  # same check, same samples
    assert not estimator_matches_exact(dwrl_gradient_estimate(largest, breakage=breakage), grad_exact)


def test_missing_weight_on_a_single_pair_is_caught_by_relative_error_only():
    """With one pair, w is a common positive scalar: dropping it only rescales the gradient (by ≈ 1/w),
    so the cosine stays high and only the relative-error half of the check catches it."""
    one_pair = 1
    grad_exact = exact_gradient(one_pair)
    largest = THOUGHT_COUNTS[-1]
    broken = dwrl_gradient_estimate(largest, breakage="no_misalignment_weight", num_pairs=one_pair)
    cosine, relative_error = cosine_and_relative_error(broken, grad_exact)
    print(f"\nsingle pair, no misalignment weight, n={largest}: cosine {cosine:.4f} rel.err {relative_error:.4f}")
    assert cosine > MIN_COSINE and relative_error > MAX_RELATIVE_ERROR
    assert not estimator_matches_exact(broken, grad_exact)
    assert estimator_matches_exact(dwrl_gradient_estimate(largest, num_pairs=one_pair), grad_exact)
