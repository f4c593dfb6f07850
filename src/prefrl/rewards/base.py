"""The one protocol every policy recipe gets its reward through.

    RewardSource.score(rows)                         -> Tensor[N]     every source
    RewardSource.prob(prompts, a, b)                 -> Tensor[B]     P(a ≻ b | x): SPPO's oracle, a judge
    RewardSource.preference_matrix(prompts, groups)  -> Tensor[B,K,K] SPPO's K×K win matrix

and, for a source that reads the policy's forward or learns beside it (R2M), optional hooks the
group loop calls for any source (each a no-op by default):

    join_run(run)                          once, before the engine prepares (checkpoint what it trains)
    begin_step(rows, step)                 once per step, before any scoring
    score_in_update(rows, hidden, mask)    rewards of some rows from the update's own forward
    after_update(rollout, policy)          after the policy step; returns stats to log

A loop never asks which source it holds: it reads the flags `is_pointwise` (a scalar per response
exists) and `reads_policy_hidden` (score needs the rollout's hidden states, or score_in_update the
update's) and calls the hooks.  The preference models (prefrl.preference) stay the core:
`PreferenceModelReward` wraps any of them.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from prefrl.data.records import PromptRecord, Text
from prefrl.errors import ConfigError
from prefrl.objectives.preference_optimization import gold_preference_matrix, pointwise_preference_matrix
from prefrl.preference.base import PreferenceModel
from prefrl.preference.gold import GoldJudge


@dataclass
class RewardRows:
    """The N rows a source scores: each row's prompt, response, and its dataset row's extra columns
    (e.g. `ground_truth`), repeated over the K samples of a prompt; `anchors` are the rows'
    `reference` responses (pairwise PPO's anchor), None where a row has none."""

    prompts: list[Text]
    responses: list[str]
    columns: dict[str, list[Any]] = field(default_factory=dict)
    anchors: list[Text | None] | None = None
    hidden_states: torch.Tensor | None = None  # (N, L, d) the policy's last layer, when collected
    attention_mask: torch.Tensor | None = None  # (N, L) over prompt + response

    @classmethod
    def from_records(cls, records: Sequence[PromptRecord], responses: Sequence[str], group_size: int = 1, **tensors: Any) -> "RewardRows":
        """Rows of `group_size` consecutive responses per record; the records' extra columns become
        per-row lists (None where a record lacks a column)."""
        rows = [records[i // group_size] for i in range(len(responses))]
        names = list(dict.fromkeys(name for record in records for name in record.extra))
        columns = {name: [record.extra.get(name) for record in rows] for name in names}
        return cls([r.prompt for r in rows], list(responses), columns, [r.reference for r in rows], **tensors)

    @classmethod
    def from_rollout(cls, rollout: Any) -> "RewardRows":
        return cls.from_records(
            rollout.prompts, rollout.responses, rollout.group_size, hidden_states=rollout.hidden_states, attention_mask=rollout.attention_mask
        )

    def __len__(self) -> int:
        return len(self.responses)


@dataclass
class RunContext:
    """What a learning source needs from the run, without knowing the engine: the policy's width,
    the schedule, and how to checkpoint and average what it trains."""

    policy_hidden_size: int
    max_steps: int
    seed: int
    register_for_checkpointing: Callable[[Any], None]
    num_processes: int = 1
    reduce_mean: Callable[[torch.Tensor], torch.Tensor] = lambda tensor: tensor


class RewardSource(ABC):
    """Anything that gives a policy's responses a reward (see the module docstring)."""

    #: a short name for messages and logs
    name: str = "reward"
    #: a scalar reward per response exists (else only `prob`: a pairwise model)
    is_pointwise: bool = True
    #: `score` reads RewardRows.hidden_states (the policy's last layer), and `score_in_update` can
    #: read the update's own forward instead
    reads_policy_hidden: bool = False

    @abstractmethod
    def score(self, rows: RewardRows) -> torch.Tensor:
        """(N,) float32 reward of every row; NaN where the source has no opinion on a row."""

    def prob(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> torch.Tensor:
        """(B,) P(a ≻ b | x). A pointwise source: Bradley–Terry link σ(r_a − r_b), both sides in one call."""
        scores = self.score(RewardRows(list(prompts) * 2, list(responses_a) + list(responses_b))).float()
        count = len(prompts)
        return torch.sigmoid(scores[:count] - scores[count:])

    def preference_matrix(self, prompts: Sequence[Text], responses: Sequence[Sequence[str]]) -> torch.Tensor:
        """(B, K, K) P(y_k ≻ y_k' | x) for every prompt: σ of score differences for a pointwise
        source, one `prob` call over the K(K−1)/2 pairs otherwise."""
        count, k = len(prompts), len(responses[0])
        if self.is_pointwise:
            scores = self.score(RewardRows([p for p in prompts for _ in range(k)], [r for group in responses for r in group])).float().view(count, k)
            return pointwise_preference_matrix(scores)
        pairs = [(b, i, j) for b in range(count) for i in range(k) for j in range(i + 1, k)]
        probs = self.prob([prompts[b] for b, _, _ in pairs], [responses[b][i] for b, i, _ in pairs], [responses[b][j] for b, _, j in pairs]).float()
        matrix = torch.full((count, k, k), 0.5)
        for (b, i, j), p in zip(pairs, probs.tolist()):
            matrix[b, i, j], matrix[b, j, i] = p, 1.0 - p
        return matrix

    # Hooks for sources that read the policy's forward or learn beside it; no-ops by default.
    def join_run(self, run: RunContext) -> None:
        """Once per run, before the engine prepares (and resumes): register what the source trains."""

    def begin_step(self, rows: RewardRows, step: int) -> None:
        """Once per step, before `score` or `score_in_update`."""

    def score_in_update(self, rows: torch.Tensor, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Rewards of the rollout rows `rows` from the update forward's hidden states (only called
        when `reads_policy_hidden`)."""
        raise NotImplementedError(f"{self.name} does not read the policy's hidden states")

    def after_update(self, rollout: Any, policy: torch.nn.Module) -> dict[str, float]:
        """After the policy step; returns stats the loop logs under rm/."""
        return {}

    @property
    def bf16(self) -> bool:
        return False

    @bf16.setter
    def bf16(self, value: bool) -> None:
        """Score under bfloat16 autocast where the source runs a network (see PreferenceModel.autocast_bf16)."""


class PreferenceModelReward(RewardSource):
    """Any prefrl preference model (a gold judge, a trained run directory) as a reward source:
    its score where it has one, its prob always."""

    def __init__(self, model: PreferenceModel, name: str | None = None):
        self.model = model
        self.name = name or getattr(model, "kind", "preference")
        self.is_pointwise = model.is_pointwise

    def score(self, rows: RewardRows) -> torch.Tensor:
        if not self.model.is_pointwise:
            raise ConfigError(f"reward={self.name!r} is a pairwise preference model: it has no per-response score (pairwise-ppo scores it against an anchor)")
        return self.model.score(rows.prompts, rows.responses).float()  # type: ignore[attr-defined]

    def prob(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> torch.Tensor:
        return self.model.prob(prompts, responses_a, responses_b).float()

    def preference_matrix(self, prompts: Sequence[Text], responses: Sequence[Sequence[str]]) -> torch.Tensor:
        if isinstance(self.model, GoldJudge):  # a rule has no scale: 1, 0 or ½, not σ of differences
            count, k = len(prompts), len(responses[0])
            scores = self.model.score([p for p in prompts for _ in range(k)], [r for group in responses for r in group]).float().view(count, k)
            return gold_preference_matrix(scores)
        return super().preference_matrix(prompts, responses)

    @property
    def bf16(self) -> bool:
        return self.model.autocast_bf16

    @bf16.setter
    def bf16(self, value: bool) -> None:
        self.model.autocast_bf16 = value


class AgainstAnchor(RewardSource):
    """R(x, y) = P(y ≻ y_anchor | x) from any source's `prob` (pairwise PPO's reward); the anchor is
    each row's `reference` response."""

    def __init__(self, judge: RewardSource):
        self.judge = judge
        self.name = f"{judge.name} against the anchor"

    def score(self, rows: RewardRows) -> torch.Tensor:
        if rows.anchors is None or any(a is None for a in rows.anchors):
            raise ConfigError(f"{self.name}: every row needs an anchor (its `reference` response)")
        return self.judge.prob(rows.prompts, rows.responses, rows.anchors).float()  # type: ignore[arg-type]

    @property
    def bf16(self) -> bool:
        return self.judge.bf16

    @bf16.setter
    def bf16(self, value: bool) -> None:
        self.judge.bf16 = value


class WeightedSum(RewardSource):
    """r = Σᵢ wᵢ rᵢ over several sources. A source's NaN (a reward function's None) drops that term
    for that row only, as TRL does (nansum)."""

    def __init__(self, sources: Sequence[RewardSource], weights: Sequence[float]):
        if len(sources) != len(weights):
            raise ConfigError(f"reward_weights has {len(weights)} weights for {len(sources)} reward sources")
        self.sources, self.weights = list(sources), [float(w) for w in weights]
        self.name = " + ".join(f"{w:g}·{s.name}" for s, w in zip(self.sources, self.weights))
        self.is_pointwise = all(s.is_pointwise for s in self.sources)
        self.reads_policy_hidden = any(s.reads_policy_hidden for s in self.sources)

    def score_each(self, rows: RewardRows) -> torch.Tensor:
        """(N, sources) the unweighted rewards, NaN where a source skipped a row."""
        return torch.stack([s.score(rows).float() for s in self.sources], dim=1)

    def score(self, rows: RewardRows) -> torch.Tensor:
        """Σᵢ wᵢ rᵢ with the NaN terms left out (a row every source skipped sums to 0, as TRL)."""
        return torch.nansum(self.score_each(rows) * torch.tensor(self.weights), dim=1)

    def join_run(self, run: RunContext) -> None:
        for source in self.sources:
            source.join_run(run)

    def begin_step(self, rows: RewardRows, step: int) -> None:
        for source in self.sources:
            source.begin_step(rows, step)

    def score_in_update(self, rows: torch.Tensor, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("a weighted sum scores whole rollouts (its parts may need more than the policy's hidden states)")

    def after_update(self, rollout: Any, policy: torch.nn.Module) -> dict[str, float]:
        stats: dict[str, float] = {}
        for source in self.sources:
            stats.update(source.after_update(rollout, policy))
        return stats

    @property
    def bf16(self) -> bool:
        return any(s.bf16 for s in self.sources)

    @bf16.setter
    def bf16(self, value: bool) -> None:
        for source in self.sources:
            source.bf16 = value


def as_float_rewards(values: Any, count: int, who: str) -> torch.Tensor:
    """A list of `count` numbers or None (→ NaN) as a float32 tensor; a clear error naming `who`
    otherwise."""
    if isinstance(values, torch.Tensor):
        values = values.detach().float().reshape(-1).tolist() if values.dim() <= 1 else values
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"{who} returned {type(values).__name__}; expected a list of {count} floats (None allowed)")
    if len(values) != count:
        raise ConfigError(f"{who} returned {len(values)} rewards for {count} completions")
    out = []
    for index, value in enumerate(values):
        if value is None:
            out.append(math.nan)
            continue
        if isinstance(value, bool) or not (isinstance(value, numbers.Real) or (isinstance(value, torch.Tensor) and value.numel() == 1)):
            raise ConfigError(f"{who} returned {value!r} (a {type(value).__name__}) at position {index}; expected a float or None")
        out.append(float(value))
    return torch.tensor(out, dtype=torch.float32)
