"""Two rows of benchmarks/learning.py compared on the same held-out prompts (issue 12: R2M against the
plain reward model, and any other pair of arms run at the same budget).

1. Each row's final greedy answers are re-judged by the task's current gold judge (from the answers kept
   in benchmarks/results/learning/answers/), and paired prompt by prompt: the exact sign test on the
   prompts where one arm passes and the other fails.
2. With --rm, the frozen reward model's score of each arm's final answers (how far each arm pushed the
   proxy), and the answers' length and repetition.
3. Each row's curve (benchmarks/learning.py keeps it): proxy and gold reward of the training samples per
   step, the reward model's accuracy on those samples (pairs the gold judge separates), held-out gold
   accuracy at each evaluation with its interval. A PNG with those three panels (--plot).

    python benchmarks/paired_rows.py "rloo-rm[mixed-b]-seed0" "rloo-r2m[mixed-b]-seed0" --rm runs/rm-mixed --plot docs/r2m_vs_plain.png
    python benchmarks/paired_rows.py A B --step 10    # both arms' answers at an intermediate evaluation (eval_steps)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefrl.data.tasks import get_task
from prefrl.data.tasks.constraints import MIN_ANSWER_WORDS, word_count
from prefrl.eval.policy import distinct_bigram_fraction
from prefrl.eval.stats import PairedOutcome, wilson_interval

RESULTS = Path(__file__).resolve().parent / "results" / "learning"


def load_row(name: str, step: int | None = None) -> tuple[dict, list[dict]]:
    """A kept row and its held-out answers; with `step`, the "final" answers are those of the
    evaluation at that step (kept by rows run with eval_steps since 2026-12-07 evening)."""
    result = json.loads((RESULTS / f"{name}.json").read_text())
    answers = [json.loads(line) for line in (RESULTS / "answers" / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    last = max(m["step"] for m in result["curve"])
    if step is None or step == last:
        return result, answers
    path = RESULTS / "answers" / f"{name}.steps.jsonl"
    evaluations = {} if not path.is_file() else {e["step"]: e for e in map(json.loads, path.read_text().splitlines())}
    if step not in evaluations:
        raise SystemExit(f"{name}: no answers kept at step {step} (kept: {sorted(evaluations) + [last]})")
    return result, [{**row, "final": response} for row, response in zip(answers, evaluations[step]["responses"], strict=True)]


def rejudged(task: str, answers: list[dict], key: str = "final") -> list[float]:
    """Today's gold verdict on each kept answer (`key`: "initial" or "final")."""
    judge = get_task(task).judge
    return [float(judge(row["prompt"], row[key])) for row in answers]


def on_policy_accuracy(curve: list[dict], first: int, last: int) -> tuple[float, int]:
    """The reward model's accuracy on the training samples of steps first..last (pooled pairs)."""
    steps = [m for m in curve if "rm/gold_pairs" in m and first <= m["step"] <= last]
    pairs = sum(m["rm/gold_pairs"] for m in steps)
    return (sum(m["rm/gold_pairs_agreeing"] for m in steps) / pairs if pairs else float("nan")), pairs


def plot(rows: dict[str, dict], path: Path, headline: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (proxy_axis, gold_axis, accuracy_axis) = plt.subplots(1, 3, figsize=(15, 4.2))
    sample_gold_axis = proxy_axis.twinx()  # the two rewards have different units: logits and pass rate
    for label, result in rows.items():
        train = [m for m in result["curve"] if "train/reward" in m]
        steps = [m["step"] for m in train]
        line = proxy_axis.plot(steps, [m["train/reward"] for m in train], label=f"{label}: reward (left)")[0]
        sample_gold_axis.plot(steps, [m["train/gold_reward"] for m in train], linestyle="--", color=line.get_color(), label=f"{label}: gold (right)")
        evaluations = [m for m in result["curve"] if "eval/gold_reward" in m]
        n = result["num_eval"]
        gold = [m["eval/gold_reward"] for m in evaluations]
        low, high = zip(*(wilson_interval(g * n, n) for g in gold))
        gold_axis.errorbar([m["step"] for m in evaluations], gold, yerr=[[g - lo for g, lo in zip(gold, low)], [hi - g for g, hi in zip(gold, high)]],
                           capsize=4, marker="o", color=line.get_color(), label=f"{label} (n = {n} prompts)")
        windows = [(s, s + 4) for s in range(1, max(steps) + 1, 5)]
        points = [(w[1], *on_policy_accuracy(result["curve"], *w)) for w in windows]
        points = [(s, a, p) for s, a, p in points if p]
        if points:
            xs, accuracy, pairs = zip(*points)
            bounds = [wilson_interval(a * p, p) for a, p in zip(accuracy, pairs)]
            accuracy_axis.errorbar(xs, accuracy, yerr=[[a - b[0] for a, b in zip(accuracy, bounds)], [b[1] - a for a, b in zip(accuracy, bounds)]],
                                   capsize=4, marker="o", color=line.get_color(), label=label)
    proxy_axis.set(title="Training samples: reward (solid) vs gold (dashed)", xlabel="step", ylabel="reward it is trained on (logits, mean)")
    sample_gold_axis.set(ylabel="gold pass rate of the samples", ylim=(0, 1))
    sample_gold_axis.legend(fontsize=7, loc="lower right")
    gold_axis.set(title="Held-out gold accuracy (greedy), 95% interval", xlabel="step", ylabel="fraction of prompts passed", ylim=(0, 1))
    accuracy_axis.axhline(0.5, color="grey", linewidth=0.8, label="chance")
    accuracy_axis.set(title="Reward model's accuracy on the policy's samples", xlabel="step (5-step windows)",
                      ylabel="gold-separated pairs ordered right", ylim=(0, 1))
    proxy_axis.legend(fontsize=7, loc="upper left")
    for axis in (gold_axis, accuracy_axis):
        axis.legend(fontsize=7)
    for axis in (proxy_axis, gold_axis, accuracy_axis):
        axis.grid(alpha=0.3)
    figure.suptitle(headline, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", help="a kept row, e.g. rloo-rm[mixed-b]-seed0 (the baseline arm)")
    parser.add_argument("second", help="the other arm, on the same held-out prompts")
    parser.add_argument("--task", default="constraints")
    parser.add_argument("--rm", help="a reward-model run directory: its score of each arm's final answers")
    parser.add_argument("--plot", help="write the three-panel PNG here")
    parser.add_argument("--step", type=int, help="pair the answers of this evaluation step (default: the final ones)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    (first, first_answers), (second, second_answers) = load_row(args.first, args.step), load_row(args.second, args.step)
    if [a["prompt"] for a in first_answers] != [a["prompt"] for a in second_answers]:
        raise SystemExit("the two rows were evaluated on different held-out prompts: they cannot be paired")
    first_gold, second_gold = rejudged(args.task, first_answers), rejudged(args.task, second_answers)
    first_initial, second_initial = rejudged(args.task, first_answers, "initial"), rejudged(args.task, second_answers, "initial")
    outcome = PairedOutcome.from_scores(first_gold, second_gold)
    report = {"first": args.first, "second": args.second, "step": args.step or "final", "prompts": len(first_gold),
              "gold_initial": sum(first_initial) / len(first_gold),
              "gold_first": sum(first_gold) / len(first_gold), "gold_second": sum(second_gold) / len(second_gold),
              "second_passes_first_fails": outcome.improved, "first_passes_second_fails": outcome.worsened, "sign_test_p": outcome.p_value}
    for label, answers, initial, gold in (("first", first_answers, first_initial, first_gold), ("second", second_answers, second_initial, second_gold)):
        against_initial = PairedOutcome.from_scores(initial, gold)
        report[f"vs_initial_{label}"] = f"{against_initial.improved} fixed / {against_initial.worsened} broken, p = {against_initial.p_value:.3g}"
        report[f"distinct_bigrams_{label}"] = sum(distinct_bigram_fraction(a["final"]) for a in answers) / len(answers)
        # the gold judge's own floor: fewer words answer nothing (a topic word, an emoji run)
        report[f"answers_under_{MIN_ANSWER_WORDS}_words_{label}"] = sum(word_count(a["final"]) < MIN_ANSWER_WORDS for a in answers)
    for label, result in (("first", first), ("second", second)):
        steps = max(m["step"] for m in result["curve"])
        report[f"rm_on_policy_accuracy_{label}_first_5_steps"], _ = on_policy_accuracy(result["curve"], 1, 5)
        report[f"rm_on_policy_accuracy_{label}_last_5_steps"], _ = on_policy_accuracy(result["curve"], steps - 4, steps)
        report[f"kl_to_start_{label}"] = result["kl_to_start"]
    if args.rm:
        from prefrl.data.records import PromptRecord
        from prefrl.rewards import RewardRows, one_source

        model = one_source(args.rm, args.task)
        for label, answers in (("initial", first_answers), ("first", first_answers), ("second", second_answers)):
            key = "initial" if label == "initial" else "final"
            rows = RewardRows.from_records([PromptRecord(a["prompt"]) for a in answers], [a[key] for a in answers])
            report[f"rm_score_{label}"] = float(model.score(rows).mean())
    if args.plot:
        headline = (f"held-out gold at the end: {args.first} {report['gold_first']:.3f}, {args.second} {report['gold_second']:.3f} "
                    f"(from {report['gold_initial']:.3f}); prompts only the second passes / only the first: "
                    f"{outcome.improved} / {outcome.worsened}, sign test p = {outcome.p_value:.2g}\n"
                    f"answers under {MIN_ANSWER_WORDS} words: {report[f'answers_under_{MIN_ANSWER_WORDS}_words_first']} and "
                    f"{report[f'answers_under_{MIN_ANSWER_WORDS}_words_second']} of {len(first_gold)}")
        if args.step is None:  # the first thing to check when gold moves: a policy that games the judge shortens its answers
            headline += (f"; final answer length (tokens) {first['length_before']:.0f} → {args.first} {first['length_after']:.0f}, "
                         f"{args.second} {second['length_after']:.0f}")
        plot({args.first: first, args.second: second}, Path(args.plot), headline)
        report["plot"] = args.plot
    print(json.dumps(report, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
