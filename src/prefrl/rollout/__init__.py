"""Sampling and log-prob computation for policies (batched, KV cache, K samples per prompt)."""

from prefrl.rollout.generation import GenerationBackend, HFGenerationBackend, SamplingParams, eos_token_ids, generate_responses, sample_next_token
from prefrl.rollout.rollout import Rollout, SideInput, collect_rollout, trim

__all__ = ["GenerationBackend", "HFGenerationBackend", "SamplingParams", "sample_next_token", "eos_token_ids", "generate_responses", "Rollout", "SideInput", "collect_rollout", "trim"]
