"""Reward sources: one protocol (base.py) for every place a policy recipe gets its reward, and
`build_reward_source`, which reads the `reward=` key.

Layer: above preference/ (it wraps preference models), below engine/, eval/ and algorithms/."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from prefrl.data.tasks import is_task
from prefrl.errors import ConfigError
from prefrl.preference import GoldJudge, load_preference_model
from prefrl.preference.base import MODEL_CARD
from prefrl.rewards.base import AgainstAnchor, PreferenceModelReward, RewardRows, RewardSource, RunContext, WeightedSum
from prefrl.rewards.section import RewardSourceSection
from prefrl.rewards.sources import FunctionReward, HFRewardModel, RemoteReward, RewardSourceError, load_function

FORMS = "gold, gold:TASK, a prefrl run directory, module:function, path/file.py:function, hf:NAME_OR_PATH, a Hugging Face model directory, http(s)://host:port/path"


def is_prefrl_model(path: Path) -> bool:
    return (path / MODEL_CARD).is_file() or (path / "model" / MODEL_CARD).is_file()


def is_hf_classifier(path: Path) -> bool:
    """A directory with a transformers config naming a *ForSequenceClassification architecture."""
    import json

    config = path / "config.json"
    if not config.is_file():
        return False
    architectures = json.loads(config.read_text()).get("architectures") or []
    return any(a.endswith("ForSequenceClassification") for a in architectures)


def one_source(spec: str, data: str, timeout: float = 60.0, retries: int = 3) -> RewardSource:
    """The source one `reward=` entry names (see FORMS)."""
    if spec == "gold":
        if not is_task(data):
            raise ConfigError(f"reward=gold: data={data!r} is not a built-in task, so it has no gold judge")
        return PreferenceModelReward(GoldJudge(data), name="gold")
    if spec.startswith("gold:"):
        return PreferenceModelReward(GoldJudge(spec.split(":", 1)[1]), name=spec)
    if spec.startswith(("http://", "https://")):
        return RemoteReward(spec, timeout=timeout, retries=retries)
    if spec.startswith("hf:"):
        return HFRewardModel(spec[3:])
    path = Path(spec).expanduser()
    if path.is_dir():
        if is_prefrl_model(path):
            return PreferenceModelReward(load_preference_model(spec), name=spec)
        if is_hf_classifier(path):
            return HFRewardModel(spec)
        raise ConfigError(f"reward={spec!r} is a directory holding neither a prefrl preference model ({MODEL_CARD}) nor a Hugging Face sequence classifier (config.json)")
    if ":" in spec:
        return FunctionReward(load_function(spec), name=spec)
    if is_task(spec):
        return PreferenceModelReward(GoldJudge(spec), name=f"gold:{spec}")
    raise ConfigError(f"reward={spec!r}: no such directory, and not one of the forms {FORMS}")


def build_reward_source(section: RewardSourceSection, data: str) -> RewardSource | None:
    """The source `reward=` names (a WeightedSum for several); empty gives the task's gold judge,
    or None when `data` has none."""
    specs = section.reward_specs()
    if not specs:
        return PreferenceModelReward(GoldJudge(data), name="gold") if is_task(data) else None
    sources = [one_source(spec, data, section.reward_timeout, section.reward_retries) for spec in specs]
    weights: Sequence[float] = section.reward_weights or [1.0] * len(sources)
    if len(sources) == 1 and weights[0] == 1.0:
        return sources[0]
    return WeightedSum(sources, weights)


__all__ = [
    "AgainstAnchor", "FunctionReward", "HFRewardModel", "PreferenceModelReward", "RemoteReward", "RewardRows", "RewardSource",
    "RewardSourceError", "RewardSourceSection", "RunContext", "WeightedSum", "build_reward_source", "one_source",
]
