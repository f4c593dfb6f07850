"""The config keys that say where a policy's reward comes from: one section every reward-using
recipe config inherits."""

from __future__ import annotations

from dataclasses import dataclass

from prefrl.config import ConfigSection, option
from prefrl.data.tasks import is_task
from prefrl.errors import ConfigError


@dataclass
class RewardSourceSection(ConfigSection):
    """Where the policy's reward comes from: one key, `reward=`, for every source (see prefrl.rewards)."""

    reward: str = option(
        "",
        "Where the reward comes from (comma-separated for a weighted sum): gold (the task's gold judge), a prefrl preference-model "
        "run directory, module:function or path/file.py:function (TRL reward_funcs signature), hf:NAME_OR_PATH or a directory of a "
        "Hugging Face sequence-classification reward model, or an http(s):// reward server (OpenRLHF's contract). Empty: the task's gold judge.",
    )
    reward_weights: list[float] = option([], "Weights of the comma-separated reward sources (default: 1 each).")
    reward_timeout: float = option(60.0, "Seconds to wait for a remote reward server's answer.")
    reward_retries: int = option(3, "Retries of a failed remote reward call (after the first try).")

    def reward_specs(self) -> list[str]:
        return [spec.strip() for spec in self.reward.split(",") if spec.strip()]

    def validate(self) -> None:
        super().validate()
        specs = self.reward_specs()
        if not specs and not is_task(self.data):  # type: ignore[attr-defined]  (DataSection's key)
            raise ConfigError(f"data={self.data!r} has no gold judge: set reward=... (a preference-model run directory, module:function, hf:MODEL, a URL; see --help)")  # type: ignore[attr-defined]
        if self.reward_weights and len(self.reward_weights) != max(len(specs), 1):
            raise ConfigError(f"reward_weights has {len(self.reward_weights)} weights for {len(specs)} reward sources (reward={self.reward!r})")
        if self.reward_timeout <= 0:
            raise ConfigError(f"config key 'reward_timeout' must be positive, got {self.reward_timeout}")
        if self.reward_retries < 0:
            raise ConfigError(f"config key 'reward_retries' must be 0 or more, got {self.reward_retries}")
