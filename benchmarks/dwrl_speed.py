"""DWRL's cost centre, thought sampling, on SmolLM2-135M: thoughts/s and the time split per pair.

(a) Sampling n thoughts for each response of B pairs, three ways:
      shared prefix  prefrl's backend: the prefix [x, y] is encoded once per response, its KV cache
                     repeated for the n thoughts, finished thoughts dropped from the batch
      re-encoded     the same backend given each prefix n times (one batch, no sharing), and Hugging
                     Face `generate(num_return_sequences=n)` per response (the prefix encoded n times)
(b) DWRL steps: time per pair spent sampling, in the scoring step and in the thought step
    (from the recipe's own `perf/*` metrics).

    python benchmarks/dwrl_speed.py
    python benchmarks/dwrl_speed.py --model tiny --pairs 2 --n-thoughts 2 --steps 1   # quick check
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("prefrl") is None:
    sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--n-thoughts", type=int, default=4)
    parser.add_argument("--max-thought-tokens", type=int, default=48)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()

    from prefrl.algorithms.dwrl import DWRLConfig, train_dwrl
    from prefrl.data.loaders import load_preference_pairs
    from prefrl.engine.metrics import read_metrics
    from prefrl.preference.dialog import DialogGPM

    gpm = DialogGPM.from_base(args.model, n_thoughts=args.n_thoughts, max_thought_tokens=args.max_thought_tokens)
    pairs = load_preference_pairs("arithmetic", "train", 0, args.pairs)
    prefixes, _ = gpm.dialog_parts([p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs])
    lm, tokenizer = gpm.scorer.lm.eval(), gpm.tokenizer

    started = time.perf_counter()
    shared = gpm.sample_thoughts(prefixes, args.n_thoughts, torch.Generator().manual_seed(0))
    shared_s = time.perf_counter() - started
    shared_tokens = sum(len(t) for t in shared)

    # The same batched backend without sharing: every prefix repeated n times, one sample each.
    started = time.perf_counter()
    repeated = gpm.sample_thoughts([p for p in prefixes for _ in range(args.n_thoughts)], 1, torch.Generator().manual_seed(0))
    repeated_s = time.perf_counter() - started
    repeated_tokens = sum(len(t) for t in repeated)

    started, reencoded_tokens = time.perf_counter(), 0
    with torch.no_grad():
        for prefix in prefixes:  # one response at a time, as generate() has no cache sharing across rows
            output = lm.generate(
                torch.tensor([prefix]), do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=args.max_thought_tokens,
                num_return_sequences=args.n_thoughts, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
            )
            reencoded_tokens += int((output[:, len(prefix) :] != tokenizer.pad_token_id).sum())
    reencoded_s = time.perf_counter() - started

    count = len(prefixes) * args.n_thoughts
    print(f"model {args.model}; {args.pairs} pairs × 2 responses × {args.n_thoughts} thoughts (≤ {args.max_thought_tokens} tokens); prefix ≈ {statistics.mean(len(p) for p in prefixes):.0f} tokens")
    print("| sampling | thoughts/s | thought tokens/s | seconds |")
    print("|---|---:|---:|---:|")
    print(f"| shared prefix (prefrl) | {count / shared_s:.2f} | {shared_tokens / shared_s:.1f} | {shared_s:.1f} |")
    print(f"| re-encoded, batched (prefrl backend, prefix repeated n times) | {count / repeated_s:.2f} | {repeated_tokens / repeated_s:.1f} | {repeated_s:.1f} |")
    print(f"| re-encoded (HF generate, per response) | {count / reencoded_s:.2f} | {reencoded_tokens / reencoded_s:.1f} | {reencoded_s:.1f} |")

    with tempfile.TemporaryDirectory() as run:
        train_dwrl(DWRLConfig(model=args.model, data="arithmetic", max_steps=args.steps, batch_size=args.pairs, num_train=args.pairs * args.steps, num_eval=0,
                              n_thoughts=args.n_thoughts, max_thought_tokens=args.max_thought_tokens, output_dir=run, progress=False))
        rows = [m for m in read_metrics(run) if "perf/step_s" in m][1:] or [m for m in read_metrics(run) if "perf/step_s" in m]
    split = {k: statistics.mean(m[f"perf/{k}_s"] for m in rows) / args.pairs for k in ("sampling", "scoring_step", "thought_step", "step")}
    print(f"\nDWRL step time per pair (mean of {len(rows)} steps after the first):")
    print("| sampling | scoring step | thought step | total |")
    print("|---:|---:|---:|---:|")
    print(f"| {split['sampling']:.2f} s | {split['scoring_step']:.2f} s | {split['thought_step']:.2f} s | {split['step']:.2f} s |")


if __name__ == "__main__":
    main()
