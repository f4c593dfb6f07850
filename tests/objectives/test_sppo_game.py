"""SPPO as a game solver: on a finite response set with a non-transitive preference matrix, self-play
with the multiplicative-weights update (eq. 3.1) and with SPPO's square-loss update (eq. 3.5 / 3.6)
drives the averaged policy to the Nash equilibrium at the O(1/√T) rate of Theorem 3.1, and
deliberately broken versions do not.

The game. Responses y ∈ {0..K−1}, P[i, j] = P(i ≻ j) with P + Pᵀ = 1 and diagonal ½. The max player's
payoff is P(π ≻ π') = πᵀ P π'; it is constant-sum (P(π ≻ π') + P(π' ≻ π) = 1) and symmetric, so
P(π ≻ π) = ½ for every π and the value is ½.

Duality gap (Theorem 3.1's quantity, at the symmetric profile (π, π)):
    gap(π) = max_π' P(π' ≻ π) − min_π' P(π ≻ π')
           = max_π' P(π' ≻ π) − (1 − max_π' P(π' ≻ π))        (constant-sum)
           = 2·(max_y P(y ≻ π) − ½)                             (linear in π': a vertex is optimal)
gap ≥ 0 because Σ_y π(y) P(y ≻ π) = P(π ≻ π) = ½ ≤ max_y P(y ≻ π); gap = 0 iff no response beats π
on average, i.e. iff (π, π) is a Nash equilibrium.

Rate. With u_t(y) = P(y ≻ π_t) ∈ [0, 1], MW from π_1 is Hedge with prior π_1:
π_{t+1} ∝ π_1 exp(η Σ_{s≤t} u_s). Hoeffding's lemma gives, for every y,
    Σ_{t≤T} u_t(y) − Σ_{t≤T} π_t·u_t ≤ ln(1/π_1(y))/η + ηT/8.
In self-play π_t·u_t = P(π_t ≻ π_t) = ½ and (1/T) Σ_t u_t(y) = P(y ≻ π̄_T) with π̄_T = (1/T) Σ_t π_t, so
    gap(π̄_T) ≤ 2L/(ηT) + η/4,   L = max_y ln(1/π_1(y)).
With η = √(8 ln K / T):  2L/(ηT) = L/√(2 ln K · T) and η/4 = ln K/√(2 ln K · T), hence
    gap(π̄_T) ≤ c/√T,   c = (L + ln K)/√(2 ln K)     (= √(2 ln K) from a uniform start).
Rock-paper-scissors from (0.6, 0.3, 0.1): L = ln 10, c = (2.302585 + 1.098612)/√2.197225 = 2.2945.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple

import pytest
import torch

from prefrl.objectives.preference_optimization import estimate_log_partition, sppo_loss, win_rate_against_policy

DTYPE = torch.float64
HORIZONS = (100, 400)


def passes_nash_check(gaps: Mapping[int, float], c: float) -> bool:
    """gap(π̄_T) ≤ c/√T at every horizon T, and the gap shrinks strictly as T grows (or is already 0)."""
    horizons = sorted(gaps)
    within_bound = all(gaps[T] <= c / math.sqrt(T) for T in horizons)
    shrinking = all(gaps[long] < gaps[short] or gaps[long] < 1e-12 for short, long in zip(horizons, horizons[1:]))
    return within_bound and shrinking


def duality_gap(preference: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
    """(..., K) policies → (...,) gaps 2·(max_y P(y ≻ π) − ½), derived in the module docstring."""
    return 2 * (win_rate_against_policy(preference, policy).max(dim=-1).values - 0.5)


def rate_constant(start: torch.Tensor) -> float:
    """c = (L + ln K)/√(2 ln K), L = max_y ln(1/π_1(y)), for η = √(8 ln K / T) (module docstring)."""
    log_k = math.log(start.numel())
    return (-start.log().min().item() + log_k) / math.sqrt(2 * log_k)


# --------------------------------------------------------------------------------------------------
# Games
# --------------------------------------------------------------------------------------------------


def rock_paper_scissors() -> torch.Tensor:
    # rows/columns: rock, paper, scissors; paper ≻ rock, scissors ≻ paper, rock ≻ scissors (prob. 1).
    # Its unique equilibrium is uniform, which has full support.
    return torch.tensor([[0.5, 0.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.5]], dtype=DTYPE)


def random_game(size: int = 6, seed: int = 0, scale: float = 2.0) -> torch.Tensor:
    # P = σ(A), A antisymmetric with N(0, scale²) entries: P + Pᵀ = σ(A) + σ(−A) = 1, diagonal σ(0) = ½.
    # Seed 0: no Condorcet winner (so no pure equilibrium); the best response to uniform is response 1,
    # which response 2 beats with probability 0.93; the equilibrium is mixed but not of full support
    # (generic skew-symmetric games have odd support): ≈ (0, 0.2348, 0.4045, 0, 0, 0.3607).
    generator = torch.Generator().manual_seed(seed)
    upper = torch.randn(size, size, generator=generator, dtype=DTYPE).triu(1) * scale
    return torch.sigmoid(upper - upper.T)


RPS_START = torch.tensor([0.6, 0.3, 0.1], dtype=DTYPE)
RANDOM_START = torch.softmax(torch.tensor([1.0, 0.5, 0.0, -0.5, 0.2, -0.3], dtype=DTYPE), dim=0)


# --------------------------------------------------------------------------------------------------
# The two updates, batched over rows (one row per horizon × variant)
# --------------------------------------------------------------------------------------------------


def multiplicative_weights(preference, policy, eta, opponent):
    """(a) eq. 3.1: π_{t+1}(y) ∝ π_t(y) exp(η P(y ≻ opponent)), P(y ≻ π) = Σ_y' π(y') P[y, y']."""
    updated = policy * torch.exp(eta * win_rate_against_policy(preference, opponent))
    return updated / updated.sum(dim=-1, keepdim=True)


def square_loss_update(preference, policy, eta, opponent, exact_log_partition=True):
    """(b) minimise `sppo_loss` over tabular logits θ, starting from θ_t = log π_t.

    The regression is over all K responses with uniform weight (SPPO's "keep all K" option, the K
    responses being the whole response set), not weighted by π_t.
    - exact_log_partition=True (eq. 3.5 with the exact log Z = log Σ_y π_t(y) exp(η P(y ≻ π_t))):
      the target log π_t + ηP − log Z is itself a normalised log-policy, so the regression reaches
      zero loss and its unique minimiser — for any positive weights — is the MW step (a).
    - False (eq. 3.6, the target SPPO trains with, log Z ≈ η/2): the target is not normalised
      (log Z ≥ η/2 by Jensen), the minimiser is MW only up to O(η²) per step.

    The optimiser is Gauss–Newton on the autograd gradient of `sppo_loss` (≤ 8 steps to a gradient
    below 1e-11 here); plain gradient descent would need hundreds of steps at each of the ~400
    iterations. `test_plain_gradient_descent_finds_the_same_minimiser` checks that it reaches the same point.
    """
    rows, size = policy.shape
    win_rates = win_rate_against_policy(preference, opponent)
    reference = policy.log()
    log_partition = estimate_log_partition(win_rates, eta, weights=policy) if exact_log_partition else None
    logits = reference.clone()
    for _ in range(50):
        logits.requires_grad_(True)
        loss, _ = sppo_loss(torch.log_softmax(logits, -1), reference, win_rates, eta, log_partition=log_partition)
        (gradient,) = torch.autograd.grad(loss * rows, logits)  # rows are independent problems: sum their means
        logits = logits.detach()
        if gradient.abs().max() < 1e-11:
            return torch.softmax(logits, -1)
        # loss_row = (1/K) Σ_y r_y², r = log_softmax(θ) − target; Jacobian J = I − 1πᵀ,
        # Gauss–Newton Hessian (2/K) JᵀJ.
        # 1 spans its null space (a logit shift changes nothing) and is orthogonal to the gradient, so adding
        # 11ᵀ/K makes it invertible without changing the step.
        jacobian = torch.eye(size, dtype=DTYPE) - torch.softmax(logits, -1).unsqueeze(-2)
        curvature = jacobian.transpose(-1, -2) @ jacobian + torch.full((size, size), 1.0 / size, dtype=DTYPE)
        logits = logits - (size / 2) * torch.linalg.solve(curvature, gradient.unsqueeze(-1)).squeeze(-1)
    raise AssertionError("square-loss regression did not converge")


class Variant(NamedTuple):
    name: str
    sign: float = 1.0  # −1: the target's sign is flipped (η → −η), moving toward losing responses
    self_play: bool = True  # False: win rates against a fixed uniform opponent instead of π_t


CORRECT = Variant("correct")
SIGN_FLIPPED = Variant("sign flipped", sign=-1.0)
NO_SELF_PLAY = Variant("no self-play", self_play=False)


def self_play_gaps(
    preference: torch.Tensor,
    start: torch.Tensor,
    variants: tuple[Variant, ...],
    update: Callable,
    **update_options,
) -> dict[str, dict[int, float]]:
    """Run T − 1 updates from π_1 = start with η = sign·√(8 ln K / T); return gap(π̄_T) per variant and T.

    All (variant, T) pairs run as rows of one batch; a row with T = 100 keeps updating after step 100
    but only π_1..π_100 enter its average.
    """
    size = preference.shape[0]
    rows = [(variant, horizon) for variant in variants for horizon in HORIZONS]
    horizon = torch.tensor([T for _, T in rows], dtype=DTYPE).unsqueeze(-1)
    eta = torch.tensor([v.sign for v, _ in rows], dtype=DTYPE).unsqueeze(-1) * torch.sqrt(8 * math.log(size) / horizon)
    self_play = torch.tensor([v.self_play for v, _ in rows]).unsqueeze(-1)
    uniform = torch.full((len(rows), size), 1.0 / size, dtype=DTYPE)
    policy = start.expand(len(rows), size).clone()
    total = policy.clone()
    for t in range(1, max(HORIZONS)):
        opponent = torch.where(self_play, policy, uniform)
        policy = update(preference, policy, eta, opponent, **update_options)
        total = total + policy * (t < horizon)
    gaps = duality_gap(preference, total / horizon).tolist()
    results: dict[str, dict[int, float]] = {}
    for (variant, T), gap in zip(rows, gaps):
        results.setdefault(variant.name, {})[T] = gap
    return results


UPDATES = {
    "multiplicative weights": (multiplicative_weights, {}),
    "square loss, exact log Z": (square_loss_update, {"exact_log_partition": True}),
    "square loss, eta/2": (square_loss_update, {"exact_log_partition": False}),
}
GAMES = {
    "rock-paper-scissors": (rock_paper_scissors, RPS_START, (CORRECT, SIGN_FLIPPED)),
    "random 6-action": (random_game, RANDOM_START, (CORRECT, SIGN_FLIPPED, NO_SELF_PLAY)),
}


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny tensors: intra-op threads only add synchronisation cost (large on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def gaps(single_thread):
    """{(game, update): {variant: {T: gap}}}, computed once."""
    results = {}
    for game_name, (make_game, start, variants) in GAMES.items():
        c = rate_constant(start)
        for update_name, (update, options) in UPDATES.items():
            found = self_play_gaps(make_game(), start, variants, update, **options)
            results[game_name, update_name] = found
            for variant, by_horizon in found.items():
                shown = ", ".join(f"T={T}: {gap:.4f} (bound {c / math.sqrt(T):.4f})" for T, gap in by_horizon.items())
                print(f"\n{game_name:20s} {update_name:26s} {variant:13s} c={c:.4f}  {shown}", end="")
    print()
    return results


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_game", [rock_paper_scissors, random_game])
def test_games_are_symmetric_constant_sum(make_game):
    preference = make_game()
    size = preference.shape[0]
    assert torch.allclose(preference + preference.T, torch.ones(size, size, dtype=DTYPE))
    assert torch.equal(preference.diagonal(), torch.full((size,), 0.5, dtype=DTYPE))


def test_duality_gap_on_known_policies():
    preference = rock_paper_scissors()
    # uniform: every response wins ½·(½ + 0 + 1) = ½ → gap 0 (the equilibrium)
    assert duality_gap(preference, torch.full((3,), 1 / 3, dtype=DTYPE)).item() == pytest.approx(0.0, abs=1e-12)
    # pure rock: paper beats it with probability 1 → gap 2·(1 − ½) = 1
    assert duality_gap(preference, torch.tensor([1.0, 0.0, 0.0], dtype=DTYPE)).item() == pytest.approx(1.0)
    # the start (0.6, 0.3, 0.1): P(paper ≻ π) = 0.6·1 + 0.3·½ = 0.75 → gap 0.5
    assert duality_gap(preference, RPS_START).item() == pytest.approx(0.5)
    # never negative
    policies = torch.softmax(torch.randn(100, 6, generator=torch.Generator().manual_seed(1), dtype=DTYPE), -1)
    assert (duality_gap(random_game(), policies) >= -1e-12).all()


def test_random_game_separates_nash_from_best_response_to_uniform():
    preference = random_game()
    size = preference.shape[0]
    # no response beats or ties every other one → no pure equilibrium
    assert not any(bool((preference[y] >= 0.5).all()) for y in range(size))
    # the best response to uniform is pure and far from an equilibrium: no self-play converges to it
    best_response = win_rate_against_policy(preference).argmax()
    assert duality_gap(preference, torch.eye(size, dtype=DTYPE)[best_response]).item() > 0.8
    # and uniform itself is no equilibrium either (unlike rock-paper-scissors)
    assert duality_gap(preference, torch.full((size,), 1 / size, dtype=DTYPE)).item() > 0.2
    # the equilibrium: on the support {1, 2, 5} solve (P − ½)π = 0, Σπ = 1; off it every response loses
    support = [1, 2, 5]
    system = torch.cat([preference[support][:, support] - 0.5, torch.ones(1, 3, dtype=DTYPE)])
    weights = torch.linalg.lstsq(system, torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=DTYPE).unsqueeze(-1)).solution
    equilibrium = torch.zeros(size, dtype=DTYPE).index_put((torch.tensor(support),), weights.squeeze(-1))
    assert (equilibrium > 0.2).sum() == 3 and equilibrium.sum().item() == pytest.approx(1.0)
    assert duality_gap(preference, equilibrium).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("game_name", list(GAMES))
@pytest.mark.parametrize("update_name", list(UPDATES))
def test_self_play_approaches_nash_at_rate_one_over_root_t(gaps, game_name, update_name):
    start = GAMES[game_name][1]
    assert passes_nash_check(gaps[game_name, update_name][CORRECT.name], rate_constant(start))


@pytest.mark.parametrize("update_name", list(UPDATES))
@pytest.mark.parametrize("variant", [SIGN_FLIPPED, NO_SELF_PLAY], ids=lambda v: v.name)
def test_breakages_fail_the_nash_check(gaps, update_name, variant):
    # On the random game: the flipped update is MW for the game 1 − P, whose equilibrium differs from
    # P's because P's is not of full support; without self-play the update converges to the best
    # response to uniform, which is no equilibrium (checked above).
    found = gaps["random 6-action", update_name][variant.name]
    assert not passes_nash_check(found, rate_constant(RANDOM_START))


def test_rock_paper_scissors_alone_cannot_catch_these_breakages(gaps):
    # Why the breakages run on the random game. (1) A flipped sign is MW on the game 1 − P = Pᵀ
    # (rock-paper-scissors with the cycle reversed), whose equilibrium is uniform too: a full-support
    # equilibrium of P − ½ is one of −(P − ½). The flipped update still passes.
    flipped = gaps["rock-paper-scissors", "multiplicative weights"][SIGN_FLIPPED.name]
    assert passes_nash_check(flipped, rate_constant(RPS_START))
    # (2) Without self-play every response wins exactly ½ against uniform, so the update is a no-op:
    # it fails only because the start is not uniform; from a uniform start it would pass (gap 0 throughout).
    preference = rock_paper_scissors()
    assert torch.allclose(win_rate_against_policy(preference), torch.full((3,), 0.5, dtype=DTYPE))
    uniform = torch.full((3,), 1 / 3, dtype=DTYPE)
    stays = multiplicative_weights(preference, uniform.unsqueeze(0), 0.3, uniform.unsqueeze(0))[0]
    assert torch.allclose(stays, uniform)
    assert passes_nash_check({T: duality_gap(preference, stays).item() for T in HORIZONS}, rate_constant(uniform))


def test_square_loss_with_exact_log_partition_reproduces_multiplicative_weights(gaps):
    for game_name in GAMES:
        exact = gaps[game_name, "multiplicative weights"]
        regressed = gaps[game_name, "square loss, exact log Z"]
        for variant in exact:
            for T in HORIZONS:
                assert regressed[variant][T] == pytest.approx(exact[variant][T], abs=1e-8)


def test_plain_gradient_descent_finds_the_same_minimiser():
    # One SPPO iteration on the random game from π_1, η = √(8 ln 6 / 100): 300 plain gradient steps on
    # `sppo_loss` (step 0.9; the loss's curvature in θ lies in [2/K, 2|π|²] ⊂ [1/3, 2], so 0.9 is stable
    # and contracts by ≤ 0.7 per step) reach the Gauss–Newton minimiser, which with exact log Z is the MW step.
    preference, policy = random_game(), RANDOM_START.unsqueeze(0)
    eta = math.sqrt(8 * math.log(6) / 100)
    win_rates = win_rate_against_policy(preference, policy)
    for exact in (True, False):
        log_partition = estimate_log_partition(win_rates, eta, weights=policy) if exact else None
        logits = policy.log().clone()
        for _ in range(300):
            logits.requires_grad_(True)
            log_policy = torch.log_softmax(logits, -1)
            loss, _ = sppo_loss(log_policy, policy.log(), win_rates, eta, log_partition=log_partition)
            (gradient,) = torch.autograd.grad(loss, logits)
            logits = logits.detach() - 0.9 * gradient
        descended = torch.softmax(logits, -1)
        newton = square_loss_update(preference, policy, eta, policy, exact_log_partition=exact)
        assert torch.allclose(descended, newton, atol=1e-9)
        mw_step = multiplicative_weights(preference, policy, eta, policy)
        if exact:
            assert torch.allclose(descended, mw_step, atol=1e-9)
        else:  # η/2 instead of log Z: MW only up to O(η²)
            assert torch.allclose(descended, mw_step, atol=1e-3) and not torch.allclose(descended, mw_step, atol=1e-5)
