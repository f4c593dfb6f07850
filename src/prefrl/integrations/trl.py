"""A prefrl preference model as a TRL reward function (`GRPOTrainer(reward_funcs=[...])`, RLOO, ...).

TRL calls each reward function as `f(prompts=..., completions=..., completion_ids=..., **columns)`,
where `columns` are the dataset's other columns (one value per completion) plus trainer extras
(`trainer_state`, `log_metric`, ...), and wants one float per completion. Prompts and completions
are plain strings (standard format) or lists of chat messages (conversational format); prefrl's
models take both as they are. TRL names the reward's metrics by the function's `__name__`.

    from prefrl.integrations.trl import reward_function
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_function("runs/bt")], ...)

A pairwise model (no score of its own) rewards P(completion ≻ anchor | prompt) with the anchor read
from the dataset column `anchor_column` (default "reference").
"""

from __future__ import annotations

from typing import Any, Callable

from prefrl.integrations.scoring import AnchorRequiredError, ModelRewards
from prefrl.preference.base import PreferenceModel

RewardFunction = Callable[..., list[float]]


def reward_function(
    model_or_run_dir: PreferenceModel | str,
    batch_size: int = 16,
    anchor_column: str = "reference",
    name: str | None = None,
) -> RewardFunction:
    """A callable with TRL's `reward_funcs` signature that scores with a prefrl preference model
    (a loaded model, a run or model directory, or gold:TASK). `name` is the `__name__` TRL logs it
    under (default `prefrl_<kind>`)."""
    if isinstance(model_or_run_dir, PreferenceModel):
        model = model_or_run_dir
    else:
        from prefrl.preference import load_preference_model

        model = load_preference_model(str(model_or_run_dir))
    rewards = ModelRewards(model, batch_size)

    def prefrl_reward(prompts: list, completions: list, **columns: Any) -> list[float]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions: TRL passes one prompt per completion")
        anchors = columns.get(anchor_column)
        if anchors is not None and len(anchors) != len(prompts):
            raise ValueError(f"column {anchor_column!r} has {len(anchors)} values for {len(prompts)} completions")
        try:
            return rewards.rewards(list(prompts), list(completions), None if anchors is None else list(anchors))
        except AnchorRequiredError as error:
            raise AnchorRequiredError(f"{error}: the dataset needs a {anchor_column!r} column (set anchor_column= to use another)") from None

    prefrl_reward.__name__ = prefrl_reward.__qualname__ = name or f"prefrl_{model.kind}".replace("-", "_")
    prefrl_reward.rewards = rewards  # type: ignore[attr-defined]  # the scorer, for callers that want probs too
    return prefrl_reward
