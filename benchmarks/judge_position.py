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
    python benchmarks/judge_position.py --judge runs/judge-a --paired-with runs/judge-b   # McNemar, a vs b

Prints: mean P("A") over both orders (½ without a position preference), position consistency
(fraction with |d| > |s|), the mean and spread of s and of d, and accuracy (d > 0 on chosen-first).
"""

from __future__ import annotations

import argparse
import json

import torch

from prefrl.data.loaders import load_preference_pairs
from prefrl.engine.threads import configure_threads


def judgement_parts(judge, pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, d) per pair: the position part and the judgement part of the verdict gap."""
    chosen_first = [judge.encode(p.prompt, p.chosen, p.rejected) for p in pairs]
    rejected_first = [judge.encode(p.prompt, p.rejected, p.chosen) for p in pairs]
    gaps = judge.verdict_gaps(chosen_first + rejected_first)
    forward, backward = gaps[: len(pairs)], gaps[len(pairs) :]
    return 0.5 * (forward + backward), 0.5 * (forward - backward)


def decompose(symmetric: torch.Tensor, antisymmetric: torch.Tensor) -> dict[str, float]:
    """Summary of the parts (s, d) of `judgement_parts`."""
    gaps = torch.cat([symmetric + antisymmetric, symmetric - antisymmetric])
    return {
        "pairs": len(symmetric),
        "prob_first_verdict": float(torch.sigmoid(gaps).mean()),
        "position_consistency": float((antisymmetric.abs() > symmetric.abs()).float().mean()),
        "accuracy": float((antisymmetric > 0).float().mean() + 0.5 * (antisymmetric == 0).float().mean()),
        "position_part_mean": float(symmetric.mean()),
        "position_part_std": float(symmetric.std()),
        "position_part_abs_mean": float(symmetric.abs().mean()),
        "judgement_part_mean": float(antisymmetric.mean()),
        "judgement_part_abs_mean": float(antisymmetric.abs().mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", required=True, help="a pairwise-rm run directory (its model/) or a base model name (the untrained judge)")
    parser.add_argument("--data", default="constraints")
    parser.add_argument("--split", default="test")
    parser.add_argument("--num", type=int, default=100)
    parser.add_argument("--num-threads", type=int, default=0)
    parser.add_argument("--paired-with", help="another judge: McNemar's exact test of the two judges' two-order verdicts on the same pairs")
    args = parser.parse_args()
    configure_threads(args.num_threads)
    from pathlib import Path

    from prefrl.preference.pairwise import PairwiseJudge

    def load(name: str) -> PairwiseJudge:
        directory = Path(name) / "model"
        return PairwiseJudge.load(directory) if directory.is_dir() else PairwiseJudge.from_base(name)

    pairs = load_preference_pairs(args.data, args.split, 0, args.num)
    judge = load(args.judge)
    symmetric, antisymmetric = judgement_parts(judge, pairs)
    result = {"judge": args.judge, "data": args.data, "split": args.split, **decompose(symmetric, antisymmetric),
              "position_offset": float(judge.model.position_offset)}
    if args.paired_with:
        from prefrl.eval.stats import PairedOutcome

        # A pair is right when the two-order verdict (the sign of d) picks the chosen response.
        right = lambda d: ((d > 0).float() + 0.5 * (d == 0).float()).tolist()  # noqa: E731
        other = right(judgement_parts(load(args.paired_with), pairs)[1])
        outcome = PairedOutcome.from_scores(other, right(antisymmetric))
        result["paired_with"] = {"judge": args.paired_with, "accuracy": sum(other) / len(other), **outcome.as_metrics()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
