"""1 accumulation step or 2: the same update, for every recipe that trains a policy or a judge.

Each recipe runs 2 optimizer steps on the tiny model twice — `gradient_accumulation_steps=1` and
`=2`, same global batch — and the runs must log the same losses and gradient norms and end with the
same parameters. Sampling is made a function of the prompt alone (`PromptHashBackend`), with
responses of varied lengths so that a token-mean over the accumulated batch differs from a mean of
per-micro-batch token means; the reward is the digit share of the response (`DigitShare`), so the
advantages are not all zero. tests/engine/test_distributed.py reuses these helpers for 1 process
against 2.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import pytest
import torch

from prefrl.engine.metrics import read_metrics
from tests.algorithms.rl_helpers import DigitShare

COMMON = ["model=tiny", "data=arithmetic", "max_steps=2", "batch_size=4", "num_eval=0", "lr=1e-3", "bf16=false", "progress=false", "num_threads=1"]
RECIPES: dict[str, list[str]] = {
    # scale_rewards=batch and token-mean: the two statistics of the whole batch
    "grpo": ["train", "grpo", "num_train=16", "num_generations=4", "max_new_tokens=12", "scale_rewards=batch", "loss_aggregation=token-mean"],
    # the KL in the reward: π_old and the reference pass
    "rloo": ["train", "rloo", "num_train=16", "num_generations=4", "max_new_tokens=12", "kl_coef=0.05", "loss_aggregation=token-mean"],
    # policy and value losses, both token-means over the whole mini-batch
    "ppo": ["train", "ppo", "num_train=16", "max_new_tokens=12", "ppo_epochs=1", "num_mini_batches=1", "loss_aggregation=token-mean"],
    "dpo": ["train", "dpo", "num_train=16"],
    "sppo": ["train", "sppo", "iterations=1", "prompts_per_iteration=8", "num_generations=4", "max_new_tokens=12", "eta=20"],
    "dwrl": ["train", "dwrl", "num_train=16", "n_thoughts=2", "max_thought_tokens=8"],
}
COMPARED = ("loss", "grad_norm", "score_loss", "score_grad_norm", "thought_loss", "thought_grad_norm")


class PromptHashBackend:
    """Responses that depend only on the prompt's tokens — not on the process, the generator or
    the model — with lengths from 1 to max_new_tokens and no end token: the same rollout on one
    process or two, under any accumulation."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def generate(self, prompt_ids, params, generator=None) -> list[list[int]]:
        responses = []
        for prompt in prompt_ids:
            rng = torch.Generator().manual_seed(zlib.crc32(repr(list(prompt)).encode()))
            for _ in range(1 if params.greedy else params.num_samples):
                length = int(torch.randint(1, params.max_new_tokens + 1, (1,), generator=rng))
                responses.append(torch.randint(7, 107, (length,), generator=rng).tolist())  # printable characters of the tiny vocabulary
        return responses


def deterministic_patches() -> list[tuple[Any, str, Any]]:
    """(object, attribute, replacement): prompt-determined sampling and the digit-share reward."""
    from prefrl.algorithms import grpo, ppo, sppo
    from prefrl.rewards import PreferenceModelReward
    from prefrl.preference.dialog import DialogGPM
    from prefrl.rollout.generation import SamplingParams

    def with_digit_share(original):
        def patched(config, *args, **kwargs):
            setup = original(config, *args, **kwargs)
            setup.reward = PreferenceModelReward(DigitShare())
            return setup

        return patched

    def sample_thoughts(self, prefixes, n, generator, greedy=False):
        return PromptHashBackend().generate(prefixes, SamplingParams(num_samples=n, max_new_tokens=self.max_thought_tokens, greedy=greedy))

    return [
        (grpo, "make_backend", PromptHashBackend),
        (grpo, "setup_policy", with_digit_share(grpo.setup_policy)),
        (ppo, "make_backend", PromptHashBackend),
        (ppo, "setup_policy", with_digit_share(ppo.setup_policy)),
        (sppo, "make_backend", PromptHashBackend),
        (sppo, "setup_policy", with_digit_share(sppo.setup_policy)),
        (DialogGPM, "sample_thoughts", sample_thoughts),
    ]


def run_recipe(recipe: str, output_dir: Path, *extra: str) -> None:
    from prefrl.cli import main

    assert main([*RECIPES[recipe], *COMMON, f"output_dir={output_dir}", *extra]) == 0


def step_metrics(run: Path) -> list[dict[str, float]]:
    """Per optimizer-step losses and gradient norms (perf/ and eval/ left out)."""
    rows = []
    for row in read_metrics(run):
        picked = {k: v for k, v in row.items() if k.split("/")[-1] in COMPARED and not k.startswith(("perf/", "eval/"))}
        if picked:
            rows.append(picked)
    return rows


def final_parameters(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted((run / "model").rglob("*.safetensors"))
    assert files, f"no saved weights under {run / 'model'}"
    return {f"{f.relative_to(run)}:{k}": v for f in files for k, v in load_file(f).items()}


def assert_same_training(first: Path, second: Path) -> None:
    a, b = step_metrics(first), step_metrics(second)
    assert len(a) == len(b) >= 2 and all(row.keys() == other.keys() for row, other in zip(a, b))
    for row, other in zip(a, b):
        for key in row:
            assert other[key] == pytest.approx(row[key], rel=1e-4, abs=1e-6), (key, row, other)
    pa, pb = final_parameters(first), final_parameters(second)
    assert pa.keys() == pb.keys()
    assert sum(v.numel() for v in pa.values()) > 10_000
    assert differing_coordinates(pa, pb) <= 10, "the final parameters differ"


def differing_coordinates(pa: dict[str, torch.Tensor], pb: dict[str, torch.Tensor], lr: float = 1e-3) -> int:
    """Coordinates that moved differently by more than lr/10. Adam moves a coordinate by about
    ±lr whatever its gradient's size, so a different objective shows in a large share of them; a
    different summation order only in the rare coordinate whose gradient is at rounding level."""
    return sum(int(((pa[k] - pb[k]).abs() > lr / 10).sum()) for k in pa)


@pytest.fixture
def deterministic(monkeypatch):
    from accelerate.state import AcceleratorState

    # accelerate's state is a per-process singleton: a bf16 run earlier in this pytest process
    # would otherwise keep autocasting these bf16=false runs (Engine passes mixed_precision=None).
    AcceleratorState._reset_state()
    for target, name, value in deterministic_patches():
        monkeypatch.setattr(target, name, value)


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_two_accumulation_steps_give_the_same_update_as_one(recipe, tmp_path, deterministic):
    run_recipe(recipe, tmp_path / "one")
    run_recipe(recipe, tmp_path / "two", "gradient_accumulation_steps=2")
    assert_same_training(tmp_path / "one", tmp_path / "two")
