"""Preference pairs from the policy's own answers, labelled by the task's gold judge.

The built-in `constraints` pairs are written from a bank of fluent sentences; a reward model trained
on them scores the default model's own answers (another style, another length) almost at random and
drifts towards rewarding brevity (docs/benchmarks.md, "demo"). RLHF collects comparisons of the
policy's samples instead (InstructGPT's labellers rank the SFT model's answers): this script does
that with the gold judge as the labeller.

For each training prompt: sample K answers from the model, score them with the gold judge, and keep
one (satisfies, violates) pair when both exist — of those, the two closest in length, so that length
alone tells as little as the samples allow (`--pairs-per-prompt N`: up to N such pairs, no answer in two). Rows are TRL's standard format with two extra columns
(`kind`, the constraint kind; `length_chosen`/`length_rejected` in tokens).

    python benchmarks/policy_pairs.py --prompts 480 --samples 4 --out runs/policy_pairs/constraints.jsonl
    # the "both" reward model of docs/benchmarks.md: 320 x 8 samples, mixed with 320 written pairs
    python benchmarks/policy_pairs.py --prompts 320 --samples 8 --num-threads 1 --mix-task-pairs 320
    # a second round (iterated RLHF): pairs from a policy trained on the first reward model, mixed with
    # the first round's pairs (re-judged) and the written pairs
    python benchmarks/policy_pairs.py --policy RUN/model --prompts 320 --samples 8 --pairs-per-prompt 0 \
        --mix-task-pairs 320 --mix-policy-pairs runs/policy_pairs/constraints.jsonl --out runs/policy_pairs/round2.jsonl
    prefrl train reward data=runs/policy_pairs/constraints-mixed.jsonl max_steps=40 batch_size=8 lr=5e-5 ...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from prefrl.data.loaders import load_prompts
from prefrl.engine.threads import configure_threads, has_fast_bf16
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.preference import GoldJudge


def closest_pairs(scores: list[float], lengths: list[int], limit: int = 1) -> list[tuple[int, int]]:
    """(chosen, rejected) indices of passing and failing answers, the smallest length gaps first, each
    answer in at most one pair (so that `limit` pairs are `limit` independent comparisons, not one
    answer repeated); `limit` 0: as many as there are."""
    passing = [i for i, s in enumerate(scores) if s >= 1.0]
    failing = [i for i, s in enumerate(scores) if s <= 0.0]
    candidates = sorted(((i, j) for i in passing for j in failing), key=lambda ij: (abs(lengths[ij[0]] - lengths[ij[1]]), ij))
    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    for i, j in candidates:
        if i not in used and j not in used:
            pairs.append((i, j))
            used.update((i, j))
            if len(pairs) == limit:
                break
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="the tokenizer and (without --policy) the policy")
    parser.add_argument("--policy", default="", help="a trained policy's model directory to sample from (iterated RLHF: pairs from the moved policy)")
    parser.add_argument("--task", default="constraints")
    parser.add_argument("--split", default="train")
    parser.add_argument("--prompts", type=int, default=480)
    parser.add_argument("--samples", type=int, default=4, help="answers sampled per prompt (K)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-prompts", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs-per-prompt", type=int, default=1, help="disjoint (pass, fail) pairs kept per prompt, closest lengths first (0: all)")
    parser.add_argument("--out", default="runs/policy_pairs/constraints.jsonl")
    parser.add_argument("--num-threads", type=int, default=0, help="torch intra-op threads (0: every core)")
    parser.add_argument("--mix-task-pairs", type=int, default=0,
                        help="also write OUT-mixed.jsonl: these pairs and this many of the task's written train pairs, shuffled")
    parser.add_argument("--mix-policy-pairs", default="",
                        help="with --mix-task-pairs: comma-separated pair files of earlier rounds (iterated RLHF) to put into "
                             "OUT-mixed.jsonl as well, re-judged: a pair the gold judge no longer separates is dropped")
    args = parser.parse_args()
    configure_threads(args.num_threads)

    from prefrl.rollout import HFGenerationBackend, SamplingParams
    from prefrl.data.batching import encode
    from prefrl.data.templates import render_prompt
    from prefrl.eval.policy import prompt_kind
    from prefrl.rollout import eos_token_ids

    tokenizer = load_tokenizer(args.model)
    lm = load_causal_lm(args.policy or args.model).eval()
    backend = HFGenerationBackend(lm, eos_token_ids(tokenizer), tokenizer.pad_token_id, autocast_bf16=has_fast_bf16())
    params = SamplingParams(num_samples=args.samples, max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0)
    judge = GoldJudge(args.task)
    prompts = load_prompts(args.task, args.split, 0, args.prompts)
    generator = torch.Generator().manual_seed(args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept, passed, started = 0, 0.0, time.perf_counter()
    with out.open("w") as handle, torch.no_grad():
        for start in range(0, len(prompts), args.batch_prompts):
            chunk = prompts[start : start + args.batch_prompts]
            ids = backend.generate([encode(tokenizer, render_prompt(tokenizer, p.prompt)) for p in chunk], params, generator)
            texts = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
            lengths = [len(i) for i in ids]
            for b, record in enumerate(chunk):
                rows = slice(b * args.samples, (b + 1) * args.samples)
                answers, answer_lengths = texts[rows], lengths[rows]
                scores = judge.score([record.prompt] * args.samples, answers).tolist()
                passed += sum(scores)
                for chosen, rejected in closest_pairs(scores, answer_lengths, args.pairs_per_prompt):
                    row = {"prompt": record.prompt, "chosen": answers[chosen], "rejected": answers[rejected], "kind": prompt_kind(record),
                           "length_chosen": answer_lengths[chosen], "length_rejected": answer_lengths[rejected]}
                    handle.write(json.dumps(row) + "\n")
                    kept += 1
            done = start + len(chunk)
            print(f"{done}/{len(prompts)} prompts, {kept} pairs, pass rate {passed / (done * args.samples):.3f}, {time.perf_counter() - started:.0f} s", flush=True)
    print(f"wrote {kept} pairs to {out}")
    if args.mix_task_pairs:
        mixed = out.with_name(f"{out.stem}-mixed.jsonl")
        earlier = [Path(name) for name in args.mix_policy_pairs.split(",") if name]
        counts = write_mixed([out, *earlier], args.task, args.mix_task_pairs, args.seed, mixed, judge)
        print(f"wrote {counts} on-policy pairs (file: kept / read) + {args.mix_task_pairs} written pairs, shuffled, to {mixed}")


def still_separated(rows: list[dict], judge: GoldJudge) -> list[dict]:
    """The pairs whose chosen answer passes the gold judge and whose rejected answer fails it now: pairs
    of an earlier round were labelled by the judge of their day (iterated RLHF keeps every round's pairs,
    and a stricter rule must not leave a pair that now teaches the wrong order)."""
    if not rows:
        return []
    prompts = [row["prompt"] for row in rows]
    chosen = judge.score(prompts, [row["chosen"] for row in rows]).tolist()
    rejected = judge.score(prompts, [row["rejected"] for row in rows]).tolist()
    return [row for row, good, bad in zip(rows, chosen, rejected) if good >= 1.0 and bad <= 0.0]


def write_mixed(policy_pair_files: list[Path], task: str, num_task_pairs: int, seed: int, out: Path, judge: GoldJudge) -> dict[str, str]:
    """The on-policy pairs of every file (re-judged, see `still_separated`) and the task's first
    `num_task_pairs` written train pairs in one shuffled file of chat-message rows (a `source` column
    says which is which). Returns, per file, "kept / read"."""
    import random

    from prefrl.data.loaders import load_preference_pairs

    def as_messages(row: dict) -> dict:
        # The task's pairs are chat messages and a file must not mix formats: a plain-string pair is
        # one user turn and one assistant turn (the rule prefrl renders plain strings by anyway).
        prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
        return {**row, "prompt": prompt, "source": "policy",
                "chosen": [{"role": "assistant", "content": row["chosen"]}], "rejected": [{"role": "assistant", "content": row["rejected"]}]}

    rows, counts = [], {}
    for path in policy_pair_files:
        read = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        kept = still_separated(read, judge)
        counts[str(path)] = f"{len(kept)} / {len(read)}"
        rows += [as_messages(row) for row in kept]
    for pair in load_preference_pairs(task, "train", 0, num_task_pairs):
        rows.append({"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected, "source": "written"})
    random.Random(seed).shuffle(rows)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return counts


if __name__ == "__main__":
    main()
