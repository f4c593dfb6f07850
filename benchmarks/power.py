"""How many held-out items (and seeds) does each of the four papers' comparisons need to decide?

Every comparison in issue 12 is paired: two arms scored on the same held-out items (prompts for
policies, pairs for preference models), each item a success or not (gold accuracy of the greedy
answer; the model orders the pair like the label). The exact sign test on the discordant items
decides (McNemar's exact test is the same test). Its power depends on two numbers:

- the effect: the difference in success rate between the arms, here the paper's reported gain;
- the discordance: the fraction of items on which the arms differ, measured on our own runs
  (`benchmarks/results/learning/*.json` for policies: fixed + broken over held-out prompts).

    python benchmarks/power.py                     # the table for docs/benchmarks.md
    python benchmarks/power.py --power 0.9 --alpha 0.01

Seeds: items × seeds paired outcomes, pooled as one sign test over (prompt, seed) pairs. Seeds of
one arm share the prompts, so pooled outcomes are not independent; the figures for "S seeds" are
optimistic when the same prompts flip in every seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefrl.eval.stats import items_for_power, paired_test_power

RESULTS = Path(__file__).resolve().parent / "results" / "learning"

# claim: (test, the paper's effect as a difference in success rate, where the paper states it)
CLAIMS = {
    "R2M keeps gold higher than the plain proxy (GRPO/RLOO)": ("sign test, policies", 0.052, "paper 002: AlpacaEval win rate +5.2 to +8.0 points; TL;DR +6.3"),
    "SPPO beats iterative DPO at equal budget": ("sign test, policies", 0.05, "paper 003 gives LC win rates per iteration; the summary has no DPO figure: sized for 5 points"),
    "Pairwise PPO beats PPO with a BT reward": ("sign test, policies", 0.05, "paper 001 reports no size in the summary: sized for 5 points"),
    "DWRL beats BT (preference accuracy)": ("McNemar, preference models", 0.091, "paper 000: up to +9.1 points on math reasoning"),
}


def observed_policy_discordance() -> tuple[float, list[str]]:
    """Mean (fixed + broken) / held-out prompts over the learning rows that moved (p < 0.05): how
    often a trained policy differs from another policy on a prompt, from our own runs."""
    rows = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))]
    moved = [r for r in rows if r["p"] < 0.05]
    # rows reconstructed from the 2026-12-03 table have no num_eval: all held 64 prompts
    fractions = [(r["fixed"] + r["broken"]) / r.get("num_eval", 64) for r in moved]
    return sum(fractions) / len(fractions), [f"{r['row']} s{r['seed']}: {r['fixed'] + r['broken']}/{r.get('num_eval', 64)}" for r in moved]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--power", type=float, default=0.8)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--preference-discordance", type=float, default=0.3, help="fraction of pairs two preference models order differently")
    args = parser.parse_args()
    policy_discordance, sources = observed_policy_discordance()
    print(f"policy discordance (trained vs initial, rows that moved): {policy_discordance:.2f} from {'; '.join(sources)}")
    print(f"preference-model discordance: {args.preference_discordance:.2f} (assumed; two models at 0.55-0.80 accuracy)\n")
    print(f"| claim | test | effect sized for | discordance | items for power {args.power:g} (α = {args.alpha:g}) | power at 64 items | at 64 × 3 seeds | at 256 × 3 seeds |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for claim, (test, effect, source) in CLAIMS.items():
        discordance = policy_discordance if test.startswith("sign") else args.preference_discordance
        needed = items_for_power(effect, discordance, args.power, args.alpha)
        powers = [paired_test_power(n, effect, discordance, args.alpha) for n in (64, 192, 768)]
        print(f"| {claim} | {test} | {effect:.3f} ({source}) | {discordance:.2f} | {needed if needed else '> 20000'} | " + " | ".join(f"{p:.2f}" for p in powers) + " |")
    # Effects on our small task may be larger than the papers' (an over-optimising proxy can lose far more
    # than 5 points): the items each size needs, at the policy discordance.
    print(f"\n| effect (difference in gold accuracy) | paired items for power {args.power:g} at discordance {policy_discordance:.2f} | prompts per seed with 3 seeds |")
    print("|---:|---:|---:|")
    for effect in (0.05, 0.10, 0.15, 0.20, 0.30):
        needed = items_for_power(effect, policy_discordance, args.power, args.alpha)
        print(f"| {effect:.2f} | {needed} | {-(-needed // 3)} |")


if __name__ == "__main__":
    main()
