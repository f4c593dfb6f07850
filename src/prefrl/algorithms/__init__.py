"""One readable recipe per method. `RECIPES` maps the CLI name to (config class, train function)."""

from __future__ import annotations

from typing import Any, Callable

from prefrl.algorithms.dpo import DPOConfig, train_dpo
from prefrl.algorithms.dwrl import DWRLConfig, train_dwrl
from prefrl.algorithms.gpm_grpo import GPMGRPOConfig, train_gpm_grpo
from prefrl.algorithms.grpo import GRPOConfig, RLOOConfig, train_grpo, train_rloo
from prefrl.algorithms.pairwise_ppo import PairwisePPOConfig, train_pairwise_ppo
from prefrl.algorithms.pairwise_rm import PairwiseRMConfig, train_pairwise_rm
from prefrl.algorithms.ppo import PPOConfig, train_ppo
from prefrl.algorithms.reward import RewardConfig, train_reward
from prefrl.algorithms.sppo import SPPOConfig, train_sppo

RECIPES: dict[str, tuple[type, Callable[[Any], dict]]] = {
    "reward": (RewardConfig, train_reward),
    "grpo": (GRPOConfig, train_grpo),
    "rloo": (RLOOConfig, train_rloo),
    "ppo": (PPOConfig, train_ppo),
    "pairwise-rm": (PairwiseRMConfig, train_pairwise_rm),
    "pairwise-ppo": (PairwisePPOConfig, train_pairwise_ppo),
    "dpo": (DPOConfig, train_dpo),
    "sppo": (SPPOConfig, train_sppo),
    "dwrl": (DWRLConfig, train_dwrl),
    "gpm-grpo": (GPMGRPOConfig, train_gpm_grpo),
}

__all__ = ["RECIPES"]
