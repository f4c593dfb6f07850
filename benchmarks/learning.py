"""Does each policy recipe learn with its shipped defaults? One row per (recipe, reward source, seed):
held-out gold accuracy before → after, the paired counts (fixed / broken) with the exact sign test,
response length before → after (a policy that games the judge often shrinks its answers), repetition,
the KL of the trained policy to the initial one, and the minutes the row took.

    python benchmarks/learning.py                          # every row, 2 seeds, SmolLM2 on constraints
    python benchmarks/learning.py --rows grpo,rloo --seeds 0
    python benchmarks/learning.py --write-docs             # also put the table into docs/benchmarks.md
    python benchmarks/learning.py --finished-only --write-docs   # run nothing: the table of every kept row
    python benchmarks/learning.py --model tiny --rows grpo --seeds 0 max_steps=1 num_eval=4   # check the script
    python benchmarks/learning.py --rejudge --finished-only --write-docs   # today's gold judge on every kept answer

Each row is `prefrl train <recipe> data=constraints seed=S …` in its own process, with only the keys a
user would set: the reward source and the seed (the demo's learned reward model where a row says so).
Finished rows keep their result.json (in the run directory and in benchmarks/results/learning/) and are
not run again (delete both to redo a row).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from statistics import mean

from harness import machine, prune_run  # noqa: E402  (benchmarks/ is on the path)
from paired_rows import rejudged  # noqa: E402

from prefrl.engine.threads import has_fast_bf16
from prefrl.eval.stats import PairedOutcome

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
# Every finished row's result.json is also kept here, in the repository: the table is rebuilt from
# these, so a row measured once stays in docs/benchmarks.md after its run directory is gone.
RESULTS = ROOT / "benchmarks" / "results" / "learning"
TABLE_START, TABLE_END = "<!-- learning-table:start -->", "<!-- learning-table:end -->"
# The gold rule a row's verdicts were read with. Rows judged before the 5-word answer floor of
# 2026-12-07 (ConstraintsTask.judge_text) and whose answers were not kept cannot be re-judged: the
# table marks them.
JUDGE_RULE = "constraint + at least 5 words (2026-12-07)"

# name: (recipe, reward source shown in the table, keys for that source; RM is the learned reward model)
ROWS = {
    "grpo": ("grpo", "gold", []),
    "rloo": ("rloo", "gold", []),
    "ppo": ("ppo", "gold", []),
    "pairwise-ppo": ("pairwise-ppo", "gold judge vs anchor", ["reward=gold:constraints"]),
    "sppo": ("sppo", "gold", []),
    "iterative-dpo": ("sppo", "gold", ["loss=sigmoid"]),
    "iterative-ipo": ("sppo", "gold", ["loss=ipo"]),
    "sppo-lr4e-5": ("sppo", "gold", ["lr=4e-5"]),
    "dpo": ("dpo", "task pairs (gold labels)", []),
    "rloo-rm": ("rloo", "learned RM", ["reward={rm}"]),
    "grpo-rm": ("grpo", "learned RM", ["reward={rm}"]),
    "grpo-r2m": ("grpo", "learned RM + R2M", ["reward={rm}", "r2m=true"]),
    "rloo-r2m": ("rloo", "learned RM + R2M", ["reward={rm}", "r2m=true"]),
    "rloo-r2m-head1e-4": ("rloo", "learned RM + R2M, head lr 1e-4", ["reward={rm}", "r2m=true", "r2m_lr=1e-4"]),
    "rloo-rm-kl": ("rloo", "learned RM, KL 0.05", ["reward={rm}", "kl_coef=0.05", "eval_steps=5"]),
    "ppo-rm": ("ppo", "learned RM", ["reward={rm}"]),
    # A quarter of the default step: a learned proxy is only right near the policy it was trained on.
    "rloo-rm-lr1e-5": ("rloo", "learned RM, lr 1e-5", ["reward={rm}", "lr=1e-5"]),
    "grpo-rm-lr1e-5": ("grpo", "learned RM, lr 1e-5", ["reward={rm}", "lr=1e-5"]),
    "rloo-lr2e-5": ("rloo", "gold", ["lr=2e-5"]),
    # The reward model's length bias taken out of every step's rewards (one slope per batch): each learned RM
    # so far paid for one length, and RL collected it within 5 steps (docs/benchmarks.md).
    "rloo-rm-ld": ("rloo", "learned RM, length-debiased", ["reward={rm}", "length_debias=true"]),
    "grpo-rm-ld": ("grpo", "learned RM, length-debiased", ["reward={rm}", "length_debias=true"]),
    # GRPO divides each group by its own std, which re-weights groups after the batch-level correction: the
    # advantages are no longer free of length. Without the division (Dr. GRPO) they are.
    "grpo-rm-ld-noscale": ("grpo", "learned RM, length-debiased, scale_rewards=none", ["reward={rm}", "length_debias=true", "scale_rewards=none"]),
}
# The learned reward model: the demo's reward training (prefrl demo, stage 2). bf16 autocast only where
# the CPU has bf16 units: emulated, a step is ~20x slower (docs/benchmarks.md, "bf16 on a CPU without bf16 units").
RM_KEYS = ["data=constraints", "max_steps=40", "batch_size=8", "lr=5e-5", "num_train=320", "num_eval=100", f"bf16={str(has_fast_bf16()).lower()}"]


def run(command: list[str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as handle:
        completed = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if completed.returncode:
        raise SystemExit(f"{' '.join(command)} failed; see {log}:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - started


def read_evaluations(run_dir: Path) -> tuple[dict, dict]:
    """The first and the last held-out evaluation in metrics.jsonl (step 0 and the end)."""
    evaluations = [m for m in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "eval/seconds" in m]
    return evaluations[0], evaluations[-1]


# What the proxy-vs-gold curve keeps of each metrics.jsonl line (absent keys are skipped).
CURVE_KEYS = ("step", "train/reward", "train/gold_reward", "policy/kl", "eval/gold_reward", "eval/proxy_reward",
              "eval/gold_vs_initial/fixed", "eval/gold_vs_initial/broken", "eval/response_length", "eval/distinct_bigrams",
              "rm/gold_pairs", "rm/gold_pairs_agreeing", "policy/response_length")


def read_curve(run_dir: Path) -> list[dict]:
    """Every step's proxy and gold reward on the samples and every held-out evaluation: over-optimisation
    (proxy up while gold falls) shows in these, not in the before/after pair."""
    lines = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [{k: m[k] for k in CURVE_KEYS if k in m} for m in lines if "train/reward" in m or "eval/seconds" in m]


def kl_to_start(run_dir: Path, model: str, num_prompts: int, samples: int, max_new_tokens: int) -> float:
    """Monte-Carlo KL(π ‖ π₀) = E_{y∼π}[log π(y|x) − log π₀(y|x)] over held-out prompts, summed over tokens."""
    import torch

    from prefrl.data.loaders import load_prompts
    from prefrl.models.loading import load_causal_lm, load_tokenizer
    from prefrl.models.policy import PolicyModel
    from prefrl.rollout import HFGenerationBackend, SamplingParams, collect_rollout, eos_token_ids

    tokenizer = load_tokenizer(model)
    policy = PolicyModel(load_causal_lm(str(run_dir / "model")).eval())
    initial = PolicyModel(load_causal_lm(model).eval())
    prompts = load_prompts("constraints", "test", 0, num_prompts)
    backend = HFGenerationBackend(policy.lm, eos_token_ids(tokenizer), tokenizer.pad_token_id)
    params = SamplingParams(num_samples=samples, max_new_tokens=max_new_tokens)
    with torch.no_grad():
        rollout = collect_rollout(policy, backend, tokenizer, prompts, params, torch.Generator().manual_seed(0), reference=initial, old_logprobs=True)
    return float(((rollout.logprobs - rollout.ref_logprobs) * rollout.response_mask).sum(-1).mean())


def run_row(name: str, seed: int, args: argparse.Namespace, runs: Path) -> dict:
    recipe, source, keys = ROWS[name]
    learned = any("{rm}" in k for k in keys)
    if learned and args.rm:
        # Another reward model than the demo's: its label goes into the row's name and source.
        name, source = f"{name}[{args.rm_label}]", f"{source} ({args.rm_label})"
    row_dir = runs / f"{name}-seed{seed}"
    result_path, kept = row_dir / "result.json", RESULTS / f"{name}-seed{seed}.json"
    for finished in (result_path, kept):
        if finished.is_file():
            return json.loads(finished.read_text())
    rm = Path(args.rm) if args.rm else runs / "rm"
    if learned and not (rm / "model").is_dir():
        if args.rm:
            raise SystemExit(f"--rm {rm}: no trained model there ({rm / 'model'} is missing)")
        print(f"training the learned reward model in {rm}", flush=True)
        rm.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "prefrl.cli", "train", "reward", f"model={args.model}", f"output_dir={rm}", "progress=false", "overwrite=true", *RM_KEYS, *args.rm_extra], runs / "rm.log")
    overrides = [k.format(rm=rm) for k in keys]
    command = [sys.executable, "-m", "prefrl.cli", "train", recipe, f"model={args.model}", "data=constraints", f"seed={seed}", f"output_dir={row_dir}", "progress=false", "overwrite=true", *overrides, *args.extra]
    row_dir.mkdir(parents=True, exist_ok=True)
    print(f"{name} seed {seed}: {' '.join(command[3:])}", flush=True)
    seconds = run(command, runs / f"{name}-seed{seed}.log")
    before, after = read_evaluations(row_dir)
    config = (row_dir / "config.yaml").read_text()
    max_new_tokens = int(next(line.split(":")[1] for line in config.splitlines() if line.startswith("max_new_tokens:")))
    kl = kl_to_start(row_dir, args.model, args.kl_prompts, args.kl_samples, max_new_tokens)
    result = {
        "row": name, "recipe": recipe, "source": source, "seed": seed, "command": "prefrl " + " ".join(command[3:]),
        "gold_before": before["eval/gold_reward"], "gold_after": after["eval/gold_reward"],
        "fixed": after["eval/gold_vs_initial/fixed"], "broken": after["eval/gold_vs_initial/broken"],
        "unchanged": after["eval/gold_vs_initial/unchanged"], "p": after["eval/gold_vs_initial/sign_test_p"],
        "length_before": before["eval/response_length"], "length_after": after["eval/response_length"],
        "distinct_bigrams_after": after["eval/distinct_bigrams"], "kl_to_start": kl, "minutes": seconds / 60,
        "per_kind_before": {k.split("/", 2)[2]: v for k, v in before.items() if k.startswith("eval/gold_reward/")},
        "per_kind_after": {k.split("/", 2)[2]: v for k, v in after.items() if k.startswith("eval/gold_reward/")},
        "length_per_kind_after": {k.split("/", 2)[2]: v for k, v in after.items() if k.startswith("eval/response_length/")},
        "num_eval": after["eval/gold_vs_initial/fixed"] + after["eval/gold_vs_initial/broken"] + after["eval/gold_vs_initial/unchanged"],
        "load_average": os.getloadavg()[0], "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "judge_rule": JUDGE_RULE,
    }
    result["curve"] = read_curve(row_dir)
    result_path.write_text(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(result, indent=2))
    # The held-out answers (initial and final) too, so that a row can be re-judged or paired with another
    # row prompt by prompt after its run directory is gone.
    # Every periodic evaluation's answers as well (`eval_steps`), to pair the policy at an earlier step.
    (RESULTS / "answers").mkdir(exist_ok=True)
    for kept_name, suffix in (("eval_answers.jsonl", ".jsonl"), ("eval_answers_by_step.jsonl", ".steps.jsonl")):
        if (row_dir / kept_name).is_file():
            shutil.copyfile(row_dir / kept_name, RESULTS / "answers" / f"{name}-seed{seed}{suffix}")
    prune_run(row_dir)
    return result


def rejudge(result: dict, answers: list[dict], task: str = "constraints", steps: dict[int, list[str]] | None = None) -> dict:
    """The row's verdicts read again from its kept answers by the task's gold judge of today:
    gold before → after, the paired counts and sign test, accuracy per kind, and the held-out
    evaluations of the curve whose answers were kept (`steps`: step → answers; the first and the last
    evaluation are the initial and final answers). Lengths, KL and the training samples' gold pass rate
    (`train/gold_reward`, samples not kept) are the run's and stay as they were."""
    before, after = rejudged(task, answers, "initial"), rejudged(task, answers, "final")
    outcome = PairedOutcome.from_scores(before, after)
    evaluations = [m for m in result.get("curve", []) if "eval/gold_reward" in m]
    by_step = {**(steps or {})}
    if evaluations:
        by_step[evaluations[-1]["step"]] = [row["final"] for row in answers]
    for m in evaluations:
        if m is evaluations[0]:
            m["eval/gold_reward"] = mean(before)
        elif m["step"] in by_step:
            scores = rejudged(task, [{**row, "final": text} for row, text in zip(answers, by_step[m["step"]], strict=True)])
            step_outcome = PairedOutcome.from_scores(before, scores)
            m.update({"eval/gold_reward": mean(scores), "eval/gold_vs_initial/fixed": step_outcome.improved,
                      "eval/gold_vs_initial/broken": step_outcome.worsened})

    def per_kind(scores: list[float]) -> dict[str, float]:
        kinds = sorted({row["kind"] for row in answers})
        return {k: mean(s for s, row in zip(scores, answers) if row["kind"] == k) for k in kinds}

    return {**result, "gold_before": mean(before), "gold_after": mean(after), "fixed": outcome.improved, "broken": outcome.worsened,
            "unchanged": outcome.unchanged, "p": outcome.p_value, "per_kind_before": per_kind(before), "per_kind_after": per_kind(after),
            "judge_rule": JUDGE_RULE}


def rejudge_kept() -> None:
    """Re-judge every kept row that has its answers; say which rows cannot be."""
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        answers_path = RESULTS / "answers" / f"{path.stem}.jsonl"
        if not answers_path.is_file():
            if result.get("judge_rule") != JUDGE_RULE:
                print(f"{path.stem}: no kept answers, judged by the earlier rule", flush=True)
            continue
        answers = [json.loads(line) for line in answers_path.read_text().splitlines() if line.strip()]
        steps_path = RESULTS / "answers" / f"{path.stem}.steps.jsonl"
        steps = {e["step"]: e["responses"] for e in map(json.loads, steps_path.read_text().splitlines())} if steps_path.is_file() else {}
        new = rejudge(result, answers, "constraints", steps)
        print(f"{path.stem}: gold {result['gold_before']:.3f} → {result['gold_after']:.3f} ({result['fixed']} / {result['broken']}, p = {result['p']:.2g}) "
              f"re-judged: {new['gold_before']:.3f} → {new['gold_after']:.3f} ({new['fixed']} / {new['broken']}, p = {new['p']:.2g})", flush=True)
        path.write_text(json.dumps(new, indent=2))


def table(results: list[dict]) -> str:
    lines = [
        "| recipe | reward source | seed | held-out gold before → after | fixed / broken | sign test p | response tokens before → after | distinct bigrams | KL to start (nats) | minutes |",
        "|---|---|---:|---|---|---:|---|---:|---:|---:|",
    ]
    for r in results:
        p = f"{r['p']:.2g}" if r["p"] < 0.001 else f"{r['p']:.3f}"
        mark = " **" if r["p"] < 0.05 and r["fixed"] > r["broken"] else " "
        if r["p"] < 0.05 and r["broken"] > r["fixed"]:
            p += " (worse)"  # significant, in the wrong direction
        if r.get("gaming"):
            # a gain read off the answers as gaming the judge (set by hand in the kept json, said in the text)
            mark, p = " ", p + " (gaming: †)"
        if r.get("judge_rule") != JUDGE_RULE:
            p += " ‡"  # judged by the rule before the answer floor, answers not kept
        lines.append(
            f"| {r['row']} | {r['source']} | {r['seed']} | {r['gold_before']:.3f} → {r['gold_after']:.3f} | {r['fixed']} / {r['broken']} |{mark}{p}{mark.strip()} | "
            f"{r['length_before']:.1f} → {r['length_after']:.1f} | {r['distinct_bigrams_after']:.2f} | {r['kl_to_start']:.2f} | {r['minutes']:.1f} |"
        )
    kinds = sorted({k for r in results for k in r["per_kind_after"]})
    if kinds:
        lines += ["", "Gold accuracy per constraint kind, before → after (held-out prompts of that kind):", "",
                  "| row | seed | " + " | ".join(kinds) + " |", "|---|---:|" + "---|" * len(kinds)]
        for r in results:
            cells = [f"{r['per_kind_before'].get(k, 0):.2f}→{r['per_kind_after'].get(k, 0):.2f}" for k in kinds]
            lines.append(f"| {r['row']} | {r['seed']} | " + " | ".join(cells) + " |")
    lines += [f"\n† {r['row']} seed {r['seed']}: {r['gaming']}" for r in results if r.get("gaming")]
    if any(r.get("judge_rule") != JUDGE_RULE for r in results):
        lines.append("\n‡ judged by the gold rule of its day, before the 5-word answer floor of 2026-12-07; its answers were "
                     "not kept, so it cannot be re-judged (every other row is judged by the current rule).")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    document = DOCS.read_text()
    block = f"{TABLE_START}\n{text}\n{TABLE_END}"
    if TABLE_START in document:
        head, rest = document.split(TABLE_START, 1)
        document = head + block + rest.split(TABLE_END, 1)[1]
    else:
        document += f"\n## Learning with the shipped defaults (`benchmarks/learning.py`)\n\n{block}\n"
    DOCS.write_text(document)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--runs", default="runs/learning")
    parser.add_argument("--kl-prompts", type=int, default=32)
    parser.add_argument("--kl-samples", type=int, default=2)
    parser.add_argument("--rm", help="a trained reward-model run directory for the learned-RM rows (default: train the demo's)")
    parser.add_argument("--rm-label", default="other", help="with --rm: a short name for that reward model (no spaces), put into the row name")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--finished-only", action="store_true", help="run nothing: the table of every row kept in benchmarks/results/learning")
    parser.add_argument("--rejudge", action="store_true", help="first re-judge every kept row with its answers by today's gold judge")
    parser.add_argument("extra", nargs="*", help="key=value overrides for every row (e.g. max_steps=1 for a check)")
    args = parser.parse_args()
    args.rm_extra = [k for k in args.extra if k.split("=")[0] in ("num_threads",)]
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    if args.rejudge:
        rejudge_kept()
    if args.finished_only:
        order = {name: index for index, name in enumerate(ROWS)}
        kept = [json.loads(path.read_text()) for path in RESULTS.glob("*.json")]
        results = sorted(kept, key=lambda r: (order.get(r["row"].split("[")[0], len(order)), r["row"], r["seed"]))
        text = table(results)
        print(text)
        if args.write_docs:
            write_docs(text)
        return
    results = []
    for name in args.rows.split(","):
        if name not in ROWS:
            raise SystemExit(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
        for seed in map(int, args.seeds.split(",")):
            result = run_row(name, seed, args, runs)
            results.append(result)
            print(f"  {result['row']} seed {seed}: gold {result['gold_before']:.3f} → {result['gold_after']:.3f}, {result['fixed']} fixed / {result['broken']} broken, p = {result['p']:.3g}, "
                  f"length {result['length_before']:.1f} → {result['length_after']:.1f}, KL {result['kl_to_start']:.2f}, {result['minutes']:.1f} min", flush=True)
    text = table(results)
    print(text)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
