"""Responses of a policy to held-out prompts, and what a person would check about them: gold
accuracy (overall and per kind of prompt), the paired comparison with the initial policy's answers
to the same prompts (fixed / broken / unchanged and the exact sign test), response length per kind,
and how repetitive the text is (a policy that games its judge often shrinks or loops)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Sequence

import torch

from prefrl.data.records import PromptRecord
from prefrl.eval.stats import PairedOutcome, wilson_interval


def distinct_bigram_fraction(text: str) -> float:
    """Distinct bigrams / all bigrams of the text's units — words, and every other non-space
    character on its own (punctuation, emoji) — 1 for text that never repeats a bigram, near 0 for
    "basically, basically, basically, …" or a run of one emoji. Texts under three units count as 1.
    (Splitting on spaces alone scored a 64-token run of emoji, one "word", as 1: a policy that had
    hacked its reward model looked fluent.)"""
    words = re.findall(r"\w+|[^\w\s]", text.lower())
    bigrams = list(zip(words, words[1:]))
    return len(set(bigrams)) / len(bigrams) if len(bigrams) > 1 else 1.0


def group_pair_agreement(proxy: torch.Tensor, gold: torch.Tensor, group_size: int) -> tuple[float, int]:
    """How often the proxy orders two samples of one prompt as the gold judge does.

    proxy, gold: (num_prompts * group_size,), the K samples of a prompt consecutive. Over every
    within-group pair whose gold scores differ, counts the pairs the proxy orders the same way (a
    proxy tie counts ½). Returns (agreeing, gold-separated pairs). Summed over steps, agreeing /
    pairs is the reward model's accuracy on the moving policy's own samples: the ordering a
    group-relative method learns from (R2M claims it stays higher than a frozen proxy's)."""
    proxy_groups, gold_groups = proxy.view(-1, group_size), gold.view(-1, group_size)
    separated = (gold_groups[:, :, None] - gold_groups[:, None, :]) > 0  # each pair once: gold prefers the first
    proxy_diff = proxy_groups[:, :, None] - proxy_groups[:, None, :]
    agreeing = ((proxy_diff > 0) & separated).sum() + 0.5 * ((proxy_diff == 0) & separated).sum()
    return float(agreeing), int(separated.sum())


def prompt_kind(record: PromptRecord) -> str:
    """The `kind` column of a built-in task's prompt (constraint kind, problem form); "all" otherwise."""
    return str(record.extra.get("kind", "all"))


def held_out_report(
    prompts: Sequence[PromptRecord], responses: Sequence[str], lengths: Sequence[int], gold_scores: Sequence[float] | None,
    baseline_gold_scores: Sequence[float] | None = None,
) -> dict[str, float]:
    """Metrics of one set of held-out answers (keys without the `eval/` prefix).

    `gold_scores[i]` is the gold judge's score of `responses[i]`; with `baseline_gold_scores` (the
    initial policy's scores on the same prompts) the report adds the paired comparison:
    fixed / broken / unchanged, the sign test's p-value and the gold win rate over the baseline."""
    metrics: dict[str, float] = {
        "response_length": sum(lengths) / len(lengths),
        "distinct_bigrams": sum(map(distinct_bigram_fraction, responses)) / len(responses),
    }
    by_kind: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(prompts):
        by_kind[prompt_kind(record)].append(index)
    if len(by_kind) > 1:
        for kind, members in sorted(by_kind.items()):
            metrics[f"response_length/{kind}"] = sum(lengths[i] for i in members) / len(members)
    if gold_scores is not None:
        low, high = wilson_interval(sum(gold_scores), len(gold_scores))
        metrics.update({"gold_reward": sum(gold_scores) / len(gold_scores), "gold_reward_ci_low": low, "gold_reward_ci_high": high})
        if len(by_kind) > 1:
            for kind, members in sorted(by_kind.items()):
                metrics[f"gold_reward/{kind}"] = sum(gold_scores[i] for i in members) / len(members)
        if baseline_gold_scores is not None:
            metrics.update(PairedOutcome.from_scores(baseline_gold_scores, gold_scores).as_metrics("gold_vs_initial/"))
    return metrics
