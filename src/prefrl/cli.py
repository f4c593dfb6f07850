"""`prefrl` command line: train, eval, data, demo.

    prefrl train RECIPE [--config FILE.yaml] [key=value | --key value | --key=value ...] [--json]
    prefrl train --help                       # the recipes, one line each
    prefrl train RECIPE --help                # a recipe's keys
    prefrl eval preference --model DIR --data TASK|PATH [--num N] [--json]
    prefrl data export TASK --n N --split train|test --out FILE.jsonl
    prefrl serve RUN_DIR|gold:TASK [--host 127.0.0.1] [--port 5000] [--batch-size 16] [--max-body-mb 16]
    prefrl demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from prefrl.data.tasks.base import SPLITS
from prefrl.errors import ConfigError, PrefrlError

TRAIN_USAGE = "usage: prefrl train RECIPE [--config FILE.yaml] [key=value | --key value | --key=value ...] [--json]"
BOOL_WORDS = ("true", "false", "1", "0", "yes", "no", "on", "off")


# ---- prefrl train ---------------------------------------------------------------------------------
@dataclass
class TrainArgs:
    recipe: str | None = None
    config: str | None = None
    json: bool = False
    help: bool = False
    overrides: list[str] = field(default_factory=list)


def _summary(cls: type) -> str:
    """A recipe's one line: the first sentence of its config's docstring."""
    paragraph = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


def recipes_help() -> str:
    from prefrl.algorithms import RECIPES

    width = max(map(len, RECIPES))
    lines = [TRAIN_USAGE, "", "recipes:"]
    lines += [f"  {name:<{width}}  {_summary(cls)}" for name, (cls, _) in RECIPES.items()]
    lines += ["", "prefrl train RECIPE --help lists a recipe's keys. TRL's names are accepted too (learning_rate, beta, ...; README: TRL names)."]
    return "\n".join(lines)


def _is_bool_key(key: str, recipe: str | None) -> bool:
    """Whether `--key` with no value means key=true: a bool key of the recipe (of any recipe if not named yet)."""
    import typing

    from prefrl.algorithms import RECIPES
    from prefrl.config import resolve_key

    classes = [RECIPES[recipe][0]] if recipe in RECIPES else [cls for cls, _ in RECIPES.values()]
    for cls in classes:
        name = resolve_key(key, cls)
        if name is not None and typing.get_type_hints(cls)[name] is bool:
            return True
    return False


def parse_train_args(tokens: Sequence[str]) -> TrainArgs:
    """`prefrl train`'s arguments, in any order: the recipe, `--config FILE` (or `--config=FILE`),
    overrides as `key=value`, `--key=value` or `--key value` (a bool key alone means true),
    `--json`, `--help`."""
    from prefrl.algorithms import RECIPES
    from prefrl.config import normalise_key

    args = TrainArgs()
    tokens = list(tokens)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token in ("-h", "--help"):
            args.help = True
        elif token == "--json":
            args.json = True
        elif token == "--config" or token.startswith("--config="):
            if "=" in token:
                value = token.split("=", 1)[1]
            elif following is None or following.startswith("--"):
                raise ConfigError("--config needs a file: --config FILE.yaml")
            else:
                value, index = following, index + 1
            if args.config is not None:
                raise ConfigError(f"--config given twice ({args.config!r} and {value!r}); one config file per run")
            if not value:
                raise ConfigError("--config needs a file: --config FILE.yaml")
            args.config = value
        elif token.startswith("--"):
            body = token[2:]
            if "=" in body:
                args.overrides.append(body)
            else:
                key = normalise_key(body)
                if not key:
                    raise ConfigError(f"{token!r} is not an option; overrides are key=value, --key=value or --key value")
                if _is_bool_key(key, args.recipe or next((t for t in tokens if t in RECIPES), None)):
                    if following is not None and following.lower() in BOOL_WORDS:
                        args.overrides.append(f"{key}={following}")
                        index += 1
                    else:
                        args.overrides.append(f"{key}=true")
                elif following is None or following.startswith("--"):
                    raise ConfigError(f"{token} needs a value: {token} VALUE, {token}=VALUE or {key}=VALUE")
                else:
                    args.overrides.append(f"{key}={following}")
                    index += 1
        elif token.startswith("-") and token != "-" and not _is_number(token):
            raise ConfigError(f"unknown option {token!r}; overrides are key=value, --key=value or --key value")
        elif "=" in token:
            args.overrides.append(token)
        elif args.recipe is None:
            args.recipe = token
        else:
            raise ConfigError(f"unexpected argument {token!r} after the recipe {args.recipe!r}: overrides are key=value, --key=value or --key value")
        index += 1
    return args


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _train(tokens: Sequence[str]) -> int:
    import difflib

    from prefrl.algorithms import RECIPES
    from prefrl.config import TRL_ALIASES, config_fields, config_help, load_config

    args = parse_train_args(tokens)
    if args.recipe is None:
        if args.help:
            print(recipes_help())
            return 0
        print(recipes_help(), file=sys.stderr)
        raise ConfigError("name a recipe: prefrl train RECIPE [key=value ...]")
    if args.recipe not in RECIPES:
        close = difflib.get_close_matches(args.recipe, list(RECIPES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown recipe {args.recipe!r}.{hint}\n{recipes_help()}")
    config_class, train = RECIPES[args.recipe]
    if args.help:
        print(f"prefrl train {args.recipe}: {config_class.__doc__}\n\nkeys (set with key=value, --key value or in --config FILE.yaml):")
        print(config_help(config_class))
        fields = config_fields(config_class)
        aliases = [f"{trl} → {key}" for trl, key in TRL_ALIASES.items() if key in fields and trl not in fields]
        if aliases:
            print(f"\nTRL's names accepted: {', '.join(aliases)}")
        return 0
    config = load_config(config_class, args.config, args.overrides, recipe=args.recipe)
    result = train(config)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


# ---- prefrl eval ----------------------------------------------------------------------------------
def _eval_rows(args: argparse.Namespace, load: Callable[..., list], task_default: int) -> tuple[list, str, dict[str, Any]]:
    """The rows `eval` scores: every row of a file (of its --split if given) or of a dataset's split,
    `--num` generated rows of a built-in task; `--num N` keeps the first N. Also a phrase saying which."""
    from prefrl.data.loaders import ALL_ROWS, is_file_source
    from prefrl.data.tasks import is_task

    if args.num is not None and args.num < 0:
        raise ConfigError(f"--num must be 0 or more, got {args.num}")
    if is_task(args.data):
        split = args.split or "test"
        count = args.num or task_default
        rows = load(args.data, split, args.data_seed, count)
        return rows, f"{len(rows)} generated rows of task {args.data!r} [{split}]", {"split": split, "num_scored": len(rows)}
    split = args.split or (ALL_ROWS if is_file_source(args.data) else "test")
    rows = load(args.data, split, args.data_seed, 0)
    total = len(rows)
    if args.num:
        rows = rows[: args.num]
    which = "every row" if len(rows) == total else f"the first {len(rows)} of {total} rows (--num {args.num})"
    return rows, f"{which} of {args.data} [{split}]", {"split": split, "num_scored": len(rows), "num_rows": total}


def _eval_preference(args: argparse.Namespace) -> int:
    from prefrl.data.loaders import load_preference_pairs
    from prefrl.eval.preference import evaluate_preference
    from prefrl.preference import load_preference_model

    pairs, which, info = _eval_rows(args, load_preference_pairs, task_default=200)  # validate data before loading a model
    model = load_preference_model(args.model, n_thoughts=args.n_thoughts)
    metrics = evaluate_preference(model, pairs, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"model": args.model, "data": args.data, **info, **metrics}, indent=2))
    else:
        print(
            f"accuracy {metrics['accuracy']:.3f} (95% CI {metrics['accuracy_ci_low']:.3f}–{metrics['accuracy_ci_high']:.3f}) "
            f"on {metrics['num_pairs']} pairs; Brier {metrics['brier']:.3f}, ECE {metrics['ece']:.3f}\nscored {which}"
        )
    return 0


def _eval_winrate(args: argparse.Namespace) -> int:
    from prefrl.data.loaders import load_prompts
    from prefrl.eval.stats import format_p
    from prefrl.eval.winrate import policy_responses, win_rate
    from prefrl.preference import GoldJudge, load_preference_model

    prompts, which, info = _eval_rows(args, load_prompts, task_default=100)
    judge = GoldJudge(args.data) if args.judge == "gold" else load_preference_model(args.judge)
    responses_a = policy_responses(args.policy, prompts, args.max_new_tokens, args.batch_size)
    responses_b = policy_responses(args.baseline, prompts, args.max_new_tokens, args.batch_size)
    metrics = win_rate(judge, [p.prompt for p in prompts], responses_a, responses_b)
    if args.json:
        print(json.dumps({"policy": args.policy, "baseline": args.baseline, "judge": args.judge, "data": args.data, **info, **metrics}, indent=2))
    else:
        print(
            f"win rate of {args.policy} over {args.baseline}: {metrics['win_rate']:.3f} "
            f"(95% CI {metrics['win_rate_ci_low']:.3f}–{metrics['win_rate_ci_high']:.3f}; "
            f"{metrics['wins']} wins, {metrics['ties']} ties, {metrics['losses']} losses on {metrics['num_prompts']} prompts; "
            f"exact sign test p = {format_p(metrics['sign_test_p'])}; judge {args.judge})"
            f"\nscored {which}"
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


def _serve(args: argparse.Namespace) -> int:
    from prefrl.serve import serve

    if args.batch_size < 1 or args.max_body_mb <= 0 or args.body_timeout <= 0:
        raise ConfigError("--batch-size, --max-body-mb and --body-timeout must be positive")
    try:
        serve(args.model, host=args.host, port=args.port, batch_size=args.batch_size, max_body_mb=args.max_body_mb, body_timeout=args.body_timeout)
    except OSError as error:  # the port is taken, the host is not this machine's
        raise PrefrlError(f"cannot serve on {args.host}:{args.port}: {error}") from None
    except KeyboardInterrupt:
        print("prefrl serve: stopped", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prefrl", description="Learning from preferences: preference models and policy alignment.")
    commands = parser.add_subparsers(dest="command", required=True)

    # `prefrl train` parses its own arguments (parse_train_args: options anywhere, --key value);
    # this entry only lists it in `prefrl --help`.
    commands.add_parser("train", help="train with a recipe (prefrl train --help lists them)", add_help=False)

    evaluate = commands.add_parser("eval", help="evaluate models")
    eval_commands = evaluate.add_subparsers(dest="eval_command", required=True)
    preference = eval_commands.add_parser("preference", help="accuracy and calibration of a preference model")
    preference.add_argument("--model", required=True, help="run directory or model directory of a preference model, or gold:TASK")
    preference.add_argument("--data", required=True, help="built-in task or data file / dataset name")
    preference.add_argument("--split", default=None, help="split to score (default: every row of a file; a task's or dataset's test split)")
    preference.add_argument("--num", type=int, default=None, help="score only the first N rows (default: every row of a file or dataset; built-in tasks generate 200)")
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
    winrate.add_argument("--split", default=None, help="split to use (default: every prompt of a file; a task's or dataset's test split)")
    winrate.add_argument("--num", type=int, default=None, help="compare on the first N prompts only (default: every prompt of a file or dataset; built-in tasks generate 100)")
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
    export.add_argument("--split", default="train", choices=list(SPLITS), help="train, test, or ood (other templates, topics and kinds)")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--format", default="conversational", choices=["conversational", "standard"])
    export.add_argument("--out", required=True)
    export.set_defaults(run=_data_export)

    served = commands.add_parser("serve", help="serve a preference model over HTTP (OpenRLHF's /get_reward, and /prob)")
    served.add_argument("model", help="run directory or model directory of a preference model, or gold:TASK")
    served.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only; 0.0.0.0 exposes it, unauthenticated)")
    served.add_argument("--port", type=int, default=5000)
    served.add_argument("--batch-size", type=int, default=16, help="rows per forward pass")
    served.add_argument("--max-body-mb", type=float, default=16, help="largest request body accepted (larger: 413)")
    served.add_argument("--body-timeout", type=float, default=30, help="seconds a request body may take to arrive (slower: 408)")
    served.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="the end-to-end demo on the embedded default model")
    demo.add_argument("--output-dir", default="runs/demo")
    demo.add_argument("--model", default="smollm2-135m-instruct")
    demo.add_argument("--data", default="constraints", help="the built-in task (constraints or arithmetic; it needs a gold judge)")
    demo.add_argument("--max-steps", type=int, default=None, help="reward-model optimizer steps (default: the demo's budget)")
    demo.add_argument("--num-eval", type=int, default=None, help="held-out pairs for the before/after accuracy")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "train":
            return _train(argv[1:])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except PrefrlError as error:
        print(f"prefrl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prefrl: interrupted (checkpoints already written are intact)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `prefrl train grpo --help | head`: the reader left, nothing is wrong
        sys.stderr = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
