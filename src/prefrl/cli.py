"""`prefrl` command line: train, eval, data, demo.

    prefrl train reward [--config FILE.yaml] [key=value ...]
    prefrl eval preference --model DIR --data TASK|PATH [--json]
    prefrl data export TASK --n N --split train|test --out FILE.jsonl
    prefrl demo
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from prefrl.errors import PrefrlError


def _train(args: argparse.Namespace) -> int:
    from prefrl.algorithms import RECIPES
    from prefrl.config import config_help, load_config

    if args.recipe not in RECIPES:
        raise PrefrlError(f"unknown recipe {args.recipe!r}; available: {', '.join(sorted(RECIPES))}")
    config_class, train = RECIPES[args.recipe]
    if args.help_keys:
        print(f"prefrl train {args.recipe}: {config_class.__doc__}\n\nkeys (set with key=value or in --config FILE.yaml):")
        print(config_help(config_class))
        return 0
    config = load_config(config_class, args.config, args.overrides)
    result = train(config)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def _eval_preference(args: argparse.Namespace) -> int:
    from prefrl.data.loaders import load_preference_pairs
    from prefrl.eval.preference import evaluate_preference
    from prefrl.preference import load_preference_model

    pairs = load_preference_pairs(args.data, args.split, args.data_seed, args.num)  # validate data before loading a model
    model = load_preference_model(args.model, n_thoughts=args.n_thoughts)
    metrics = evaluate_preference(model, pairs, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"model": args.model, "data": args.data, "split": args.split, **metrics}, indent=2))
    else:
        print(
            f"accuracy {metrics['accuracy']:.3f} (95% CI {metrics['accuracy_ci_low']:.3f}–{metrics['accuracy_ci_high']:.3f}) "
            f"on {metrics['num_pairs']} pairs of {args.data} [{args.split}]; Brier {metrics['brier']:.3f}, ECE {metrics['ece']:.3f}"
        )
    return 0


def _eval_winrate(args: argparse.Namespace) -> int:
    from prefrl.data.loaders import load_prompts
    from prefrl.eval.winrate import policy_responses, win_rate
    from prefrl.preference import GoldJudge, load_preference_model

    prompts = load_prompts(args.data, args.split, args.data_seed, args.num)
    judge = GoldJudge(args.data) if args.judge == "gold" else load_preference_model(args.judge)
    responses_a = policy_responses(args.policy, prompts, args.max_new_tokens, args.batch_size)
    responses_b = policy_responses(args.baseline, prompts, args.max_new_tokens, args.batch_size)
    metrics = win_rate(judge, [p.prompt for p in prompts], responses_a, responses_b)
    if args.json:
        print(json.dumps({"policy": args.policy, "baseline": args.baseline, "judge": args.judge, "data": args.data, **metrics}, indent=2))
    else:
        print(
            f"win rate of {args.policy} over {args.baseline}: {metrics['win_rate']:.3f} "
            f"(95% CI {metrics['win_rate_ci_low']:.3f}–{metrics['win_rate_ci_high']:.3f}; "
            f"{metrics['wins']} wins, {metrics['ties']} ties, {metrics['losses']} losses on {metrics['num_prompts']} prompts; judge {args.judge})"
        )
    return 0


def _data_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from prefrl.data.tasks import get_task

    try:
        task = get_task(args.task)
        rows = task.generate(args.n, split=args.split, seed=args.seed, fmt=args.format)
    except ValueError as error:
        raise PrefrlError(str(error)) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    print(f"wrote {len(rows)} {args.task} rows ({args.split}, {args.format}) to {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from prefrl.demo import run_demo

    run_demo(output_dir=args.output_dir, model=args.model, max_steps=args.max_steps, num_eval=args.num_eval, data=args.data)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prefrl", description="Learning from preferences: preference models and policy alignment.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train with a recipe", add_help=False)
    train.add_argument("recipe", help="recipe name, e.g. reward")
    train.add_argument("--config", help="YAML file of config keys")
    train.add_argument("--json", action="store_true", help="print the run's result as JSON at the end")
    train.add_argument("--help", "-h", dest="help_keys", action="store_true", help="list the recipe's config keys")
    train.add_argument("overrides", nargs="*", help="key=value config overrides")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("eval", help="evaluate models")
    eval_commands = evaluate.add_subparsers(dest="eval_command", required=True)
    preference = eval_commands.add_parser("preference", help="accuracy and calibration of a preference model")
    preference.add_argument("--model", required=True, help="run directory or model directory of a preference model, or gold:TASK")
    preference.add_argument("--data", required=True, help="built-in task or data file / dataset name")
    preference.add_argument("--split", default="test")
    preference.add_argument("--num", type=int, default=200, help="rows to evaluate (0: all; built-in tasks generate this many)")
    preference.add_argument("--data-seed", type=int, default=0, help="seed of a built-in task's generator")
    preference.add_argument("--batch-size", type=int, default=32)
    preference.add_argument("--n-thoughts", type=int, default=None, help="thoughts per response for a dialog GPM (default: as trained)")
    preference.add_argument("--json", action="store_true", help="print the metrics as JSON")
    preference.set_defaults(run=_eval_preference)

    winrate = eval_commands.add_parser("winrate", help="win rate of one policy's responses over another's")
    winrate.add_argument("--policy", required=True, help="policy A: run directory, model path or name")
    winrate.add_argument("--baseline", required=True, help="policy B: run directory, model path or name")
    winrate.add_argument("--judge", required=True, help="a preference model's run directory, or gold (the task's gold judge)")
    winrate.add_argument("--data", required=True, help="built-in task or prompt file / dataset name")
    winrate.add_argument("--split", default="test")
    winrate.add_argument("--num", type=int, default=100, help="prompts to compare on")
    winrate.add_argument("--data-seed", type=int, default=0)
    winrate.add_argument("--max-new-tokens", type=int, default=64)
    winrate.add_argument("--batch-size", type=int, default=16)
    winrate.add_argument("--json", action="store_true", help="print the result as JSON")
    winrate.set_defaults(run=_eval_winrate)

    data = commands.add_parser("data", help="datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    export = data_commands.add_parser("export", help="write a built-in task as TRL-format jsonl")
    export.add_argument("task", help="arithmetic or constraints")
    export.add_argument("--n", type=int, default=1000)
    export.add_argument("--split", default="train", choices=["train", "test"])
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--format", default="conversational", choices=["conversational", "standard"])
    export.add_argument("--out", required=True)
    export.set_defaults(run=_data_export)

    demo = commands.add_parser("demo", help="the end-to-end demo on the embedded default model")
    demo.add_argument("--output-dir", default="runs/demo")
    demo.add_argument("--model", default="smollm2-135m-instruct")
    demo.add_argument("--data", default="constraints", help="the built-in task (constraints or arithmetic; it needs a gold judge)")
    demo.add_argument("--max-steps", type=int, default=None, help="reward-model optimizer steps (default: the demo's budget)")
    demo.add_argument("--num-eval", type=int, default=None, help="held-out pairs for the before/after accuracy")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except PrefrlError as error:
        print(f"prefrl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prefrl: interrupted (checkpoints already written are intact)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
