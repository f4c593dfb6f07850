"""Win rate of one policy's responses over another's, judged by any preference model."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from prefrl.data.records import PromptRecord
from prefrl.eval.stats import sign_test, wilson_interval
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.preference.base import PreferenceModel
from prefrl.rollout.generation import generate_responses


def win_rate(judge: PreferenceModel, prompts: Sequence[Any], responses_a: Sequence[str], responses_b: Sequence[str], batch_size: int = 32) -> dict[str, float]:
    """Mean P(a ≻ b) over prompts, with a 95% Wilson interval (a tie counts ½), the counts of
    clear wins (P > ½), ties (P = ½) and losses, and the exact sign test of wins against losses
    (paired: both policies answered the same prompts)."""
    probs = torch.cat([
        judge.prob(list(prompts[s : s + batch_size]), list(responses_a[s : s + batch_size]), list(responses_b[s : s + batch_size])).float().cpu()
        for s in range(0, len(prompts), batch_size)
    ])
    low, high = wilson_interval(float(probs.sum()), len(probs))
    return {
        "win_rate": float(probs.mean()),
        "win_rate_ci_low": low,
        "win_rate_ci_high": high,
        "wins": int((probs > 0.5).sum()),
        "ties": int((probs == 0.5).sum()),
        "losses": int((probs < 0.5).sum()),
        "num_prompts": len(probs),
        "sign_test_p": sign_test(int((probs > 0.5).sum()), int((probs < 0.5).sum())),
    }


def policy_responses(name: str, prompts: Sequence[PromptRecord], max_new_tokens: int, batch_size: int = 16, cache_dir: str | None = None) -> list[str]:
    """Greedy responses of a policy given by name, path or run directory."""
    tokenizer = load_tokenizer(name, cache_dir)
    model = load_causal_lm(name, cache_dir=cache_dir).eval()
    return generate_responses(model, tokenizer, prompts, max_new_tokens, batch_size)
