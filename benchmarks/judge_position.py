"""Why does a pairwise judge's verdict change when A and B are swapped? (issue 12, Pairwise-RL)

The judge reads [x, a, b] and gives the verdict-logit gap g(a, b) = logit_A − logit_B. Over the two
orders of one pair, split it into

    s = ½ [g(a, b) + g(b, a)]   the part that does not depend on which answer comes first: a
                                preference for the *position* "A" (constant, or varying by prompt)
    d = ½ [g(a, b) − g(b, a)]   the part that follows the answers: the judgement itself

so g(a, b) = s + d and g(b, a) = s − d. The verdict survives the swap exactly when |d| > |s|, and
the two-order average ½[σ(s + d) + σ(d − s)] has the sign of d: accuracy reads only d, while a
large |s| squeezes the averaged probability towards ½ (a judge that looks unconfident).

    python benchmarks/judge_position.py --judge runs/judge --num 100
    python benchmarks/judge_position.py --judge smollm2-135m-instruct     # the untrained judge

Prints: mean P("A") over both orders (½ without a position preference), position consistency
(fraction with |d| > |s|), the mean and spread of s and of d, and accuracy (d > 0 on chosen-first).
"""

from __future__ import annotations

import argparse
import json

import torch

from prefrl.data.loaders import load_preference_pairs
from prefrl.engine.threads import configure_threads


def decompose(judge, pairs) -> dict[str, float]:
    chosen_first = [judge.encode(p.prompt, p.chosen, p.rejected) for p in pairs]
    rejected_first = [judge.encode(p.prompt, p.rejected, p.chosen) for p in pairs]
    gaps = judge.verdict_gaps(chosen_first + rejected_first)
    forward, backward = gaps[: len(pairs)], gaps[len(pairs) :]
    symmetric, antisymmetric = 0.5 * (forward + backward), 0.5 * (forward - backward)
    return {
        "pairs": len(pairs),
        "prob_first_verdict": float(torch.sigmoid(gaps).mean()),
        "position_consistency": float((antisymmetric.abs() > symmetric.abs()).float().mean()),
        "accuracy": float((antisymmetric > 0).float().mean() + 0.5 * (antisymmetric == 0).float().mean()),
        "position_part_mean": float(symmetric.mean()),
        "position_part_std": float(symmetric.std()),
        "position_part_abs_mean": float(symmetric.abs().mean()),
        "judgement_part_mean": float(antisymmetric.mean()),
        "judgement_part_abs_mean": float(antisymmetric.abs().mean()),
        "position_offset": float(judge.model.position_offset),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", required=True, help="a pairwise-rm run directory (its model/) or a base model name (the untrained judge)")
    parser.add_argument("--data", default="constraints")
    parser.add_argument("--split", default="test")
    parser.add_argument("--num", type=int, default=100)
    parser.add_argument("--num-threads", type=int, default=0)
    args = parser.parse_args()
    configure_threads(args.num_threads)
    from pathlib import Path

    from prefrl.preference.pairwise import PairwiseJudge

    directory = Path(args.judge) / "model"
    judge = PairwiseJudge.load(directory) if directory.is_dir() else PairwiseJudge.from_base(args.judge)
    result = {"judge": args.judge, "data": args.data, "split": args.split, **decompose(judge, load_preference_pairs(args.data, args.split, 0, args.num))}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
