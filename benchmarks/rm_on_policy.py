"""How well does a reward model rank the policy's own samples? The quantity RL actually uses.

A reward model is trained and tested on the task's written pairs; RLOO/GRPO only ever use it to
rank K samples of one prompt against each other. This script samples K answers per held-out prompt
from a policy, scores each with the reward model and the task's gold judge, and reports over every
within-prompt pair of samples:

- on-policy accuracy: of the pairs the gold judge separates (one passes, one fails), the share the
  reward model orders the same way (exact binomial interval);
- length preference: of the pairs of different length, the share where the reward model prefers the
  shorter answer, beside the same share for the gold judge (a reward model that prefers short answers
  far more often than gold does pays for brevity, which RL will find);
- the same accuracy for the reward minus its within-prompt linear fit on length (a length-debiased
  reward), and for the reward as `length_debias=true` gives it to RL (one slope per 8-prompt batch,
  `length_debiased_rewards`), with that reward's own length preference; all per constraint kind too.

    python benchmarks/rm_on_policy.py --reward runs/demo/reward/model --prompts 32 --samples 8
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections import defaultdict
from pathlib import Path

import torch

from prefrl.data.loaders import load_prompts
from prefrl.engine.threads import configure_threads, has_fast_bf16
from prefrl.eval.stats import wilson_interval
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.objectives.policy import length_debiased_rewards
from prefrl.preference import GoldJudge, load_preference_model


# prompts per RL step at the shipped defaults (batch_size): the batch one length slope is fitted on
TRAINING_BATCH_PROMPTS = 8


def length_residual(scores: list[float], lengths: list[int]) -> list[float]:
    """Scores minus their least-squares line on length within one prompt's samples."""
    n = len(scores)
    mean_len, mean_score = sum(lengths) / n, sum(scores) / n
    var = sum((l - mean_len) ** 2 for l in lengths)
    slope = sum((l - mean_len) * (s - mean_score) for l, s in zip(lengths, scores)) / var if var else 0.0
    return [s - slope * (l - mean_len) for s, l in zip(scores, lengths)]


def pair_stats(groups: list[dict]) -> dict[str, float]:
    agree = agree_debiased = agree_batch = separated = 0
    rm_shorter = batch_shorter = gold_shorter = gold_length_pairs = length_pairs = 0
    for group in groups:
        rm, gold, lengths, debiased = group["rm"], group["gold"], group["lengths"], length_residual(group["rm"], group["lengths"])
        batch_debiased = group["rm_batch_debiased"]
        for i, j in itertools.combinations(range(len(rm)), 2):
            if gold[i] != gold[j]:
                separated += 1
                better = i if gold[i] > gold[j] else j
                worse = j if better == i else i
                agree += rm[better] > rm[worse]
                agree_debiased += debiased[better] > debiased[worse]
                agree_batch += batch_debiased[better] > batch_debiased[worse]
            if lengths[i] != lengths[j]:
                short, long_ = (i, j) if lengths[i] < lengths[j] else (j, i)
                length_pairs += 1
                rm_shorter += rm[short] > rm[long_]
                batch_shorter += batch_debiased[short] > batch_debiased[long_]
                if gold[i] != gold[j]:
                    gold_length_pairs += 1
                    gold_shorter += gold[short] > gold[long_]
    low, high = wilson_interval(agree, separated) if separated else (float("nan"), float("nan"))
    return {
        "separated_pairs": separated, "on_policy_accuracy": agree / separated if separated else float("nan"),
        "ci_low": low, "ci_high": high,
        "debiased_accuracy": agree_debiased / separated if separated else float("nan"),
        "batch_debiased_accuracy": agree_batch / separated if separated else float("nan"),
        "batch_debiased_prefers_shorter": batch_shorter / length_pairs if length_pairs else float("nan"),
        "rm_prefers_shorter": rm_shorter / length_pairs if length_pairs else float("nan"),
        "gold_prefers_shorter": gold_shorter / gold_length_pairs if gold_length_pairs else float("nan"),
    }


def sample_groups(args: argparse.Namespace) -> list[dict]:
    from prefrl.data.batching import encode
    from prefrl.data.templates import render_prompt
    from prefrl.eval.policy import prompt_kind
    from prefrl.rollout import eos_token_ids
    from prefrl.rollout import HFGenerationBackend, SamplingParams

    tokenizer = load_tokenizer(args.model)
    lm = load_causal_lm(args.policy or args.model).eval()
    backend = HFGenerationBackend(lm, eos_token_ids(tokenizer), tokenizer.pad_token_id, autocast_bf16=has_fast_bf16())
    params = SamplingParams(num_samples=args.samples, max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0)
    prompts = load_prompts(args.task, args.split, 0, args.prompts)
    generator = torch.Generator().manual_seed(args.seed)
    groups = []
    with torch.no_grad():
        for start in range(0, len(prompts), args.batch_prompts):
            chunk = prompts[start : start + args.batch_prompts]
            ids = backend.generate([encode(tokenizer, render_prompt(tokenizer, p.prompt)) for p in chunk], params, generator)
            texts = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
            for b, record in enumerate(chunk):
                rows = slice(b * args.samples, (b + 1) * args.samples)
                groups.append({"prompt": record.prompt, "kind": prompt_kind(record), "answers": texts[rows], "lengths": [len(i) for i in ids[rows]]})
            print(f"sampled {len(groups)}/{len(prompts)} prompts", flush=True)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reward", required=True, help="a pointwise preference model's run or model directory")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="the tokenizer and the initial policy")
    parser.add_argument("--policy", default="", help="a trained policy's model directory (default: the initial policy)")
    parser.add_argument("--task", default="constraints")
    parser.add_argument("--split", default="test")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-prompts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-file", default="", help="reuse (or write) the sampled answers here")
    parser.add_argument("--num-threads", type=int, default=0)
    args = parser.parse_args()
    configure_threads(args.num_threads)
    started = time.perf_counter()
    cache = Path(args.samples_file) if args.samples_file else None
    if cache is not None and cache.is_file():
        groups = [json.loads(line) for line in cache.read_text().splitlines()]
    else:
        groups = sample_groups(args)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text("".join(json.dumps(g) + "\n" for g in groups))
    reward, gold = load_preference_model(args.reward), GoldJudge(args.task)
    reward.autocast_bf16 = has_fast_bf16()
    for group in groups:
        prompts = [group["prompt"]] * len(group["answers"])
        group["rm"] = reward.score(prompts, group["answers"]).float().tolist()
        group["gold"] = gold.score(prompts, group["answers"]).float().tolist()
    for start in range(0, len(groups), TRAINING_BATCH_PROMPTS):
        batch = groups[start : start + TRAINING_BATCH_PROMPTS]
        scores = torch.tensor([s for g in batch for s in g["rm"]])
        lengths = torch.tensor([l for g in batch for l in g["lengths"]])
        debiased, _ = length_debiased_rewards(scores, lengths, args.samples)
        for index, group in enumerate(batch):
            group["rm_batch_debiased"] = debiased[index * args.samples : (index + 1) * args.samples].tolist()
    overall = pair_stats(groups)
    print(json.dumps({"reward": args.reward, "policy": args.policy or args.model, "prompts": len(groups), "samples": args.samples, **overall,
                      "seconds": time.perf_counter() - started}, indent=2))
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for group in groups:
        by_kind[group["kind"]].append(group)
    print("kind | separated pairs | on-policy acc | debiased acc (per prompt) | debiased acc (per batch) | RM prefers shorter | per-batch debiased prefers shorter | gold prefers shorter")
    for kind, kind_groups in sorted(by_kind.items()):
        s = pair_stats(kind_groups)
        print(f"{kind} | {s['separated_pairs']} | {s['on_policy_accuracy']:.2f} | {s['debiased_accuracy']:.2f} | {s['batch_debiased_accuracy']:.2f} | "
              f"{s['rm_prefers_shorter']:.2f} | {s['batch_debiased_prefers_shorter']:.2f} | {s['gold_prefers_shorter']:.2f}")


if __name__ == "__main__":
    main()
