"""The command line as TRL users type it, and `prefrl eval` on files (every row, and says how many)."""

import json

import pytest
import yaml

from prefrl.algorithms import RECIPES
from prefrl.cli import main, parse_train_args
from prefrl.data.loaders import load_preference_pairs
from prefrl.errors import ConfigError
from tests.conftest import write_jsonl


# ---- prefrl train: help -------------------------------------------------------------------------------
def test_train_help_lists_every_recipe_on_one_line(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in RECIPES:
        matching = [line for line in lines if line.split()[:1] == [name]]
        assert len(matching) == 1 and len(matching[0].split()) > 2, name  # the name and a description


def test_train_without_a_recipe_lists_them_and_fails(capsys):
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert "name a recipe" in err and all(name in err for name in RECIPES) and "Traceback" not in err


def test_recipe_help_lists_its_keys_and_trl_names(capsys):
    assert main(["train", "grpo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "kl_coef (default" in out and "beta → kl_coef" in out and "learning_rate → lr" in out
    assert main(["train", "dpo", "-h"]) == 0
    assert "beta → kl_coef" not in capsys.readouterr().out  # DPO's beta is its own


def test_unknown_recipe_suggests_one(capsys):
    assert main(["train", "rewrad"]) == 2
    assert "Did you mean 'reward'" in capsys.readouterr().err


# ---- prefrl train: argument forms ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "tokens",
    [
        ["reward", "--config", "c.yaml", "lr=1e-5", "output_dir=o"],  # the README's form
        ["--config", "c.yaml", "reward", "lr=1e-5", "output_dir=o"],
        ["reward", "lr=1e-5", "output_dir=o", "--config", "c.yaml"],
        ["reward", "--config=c.yaml", "--lr", "1e-5", "--output_dir=o"],
        ["--lr=1e-5", "reward", "--output-dir", "o", "--config=c.yaml"],
    ],
)
def test_config_anywhere_and_key_value_forms(tokens):
    args = parse_train_args(tokens)
    assert args.recipe == "reward" and args.config == "c.yaml"
    assert sorted(args.overrides) == sorted(["lr=1e-5", "output_dir=o"]) or sorted(args.overrides) == sorted(["lr=1e-5", "output-dir=o"])


def test_bool_flags_alone_mean_true():
    args = parse_train_args(["reward", "--resume", "--bf16", "false", "--progress=false", "--json"])
    assert args.overrides == ["resume=true", "bf16=false", "progress=false"] and args.json
    args = parse_train_args(["--resume", "reward"])  # a bool flag before the recipe does not swallow it
    assert args.recipe == "reward" and args.overrides == ["resume=true"]
    args = parse_train_args(["grpo", "--lr", "-1"])  # a negative number is a value, not an option
    assert args.overrides == ["lr=-1"]


@pytest.mark.parametrize(
    "tokens, fragment",
    [
        (["reward", "--lr"], "--lr needs a value"),
        (["reward", "--config"], "--config needs a file"),
        (["reward", "--config", "a.yaml", "--config", "b.yaml"], "--config given twice"),
        (["reward", "stray"], "unexpected argument 'stray'"),
        (["reward", "-x"], "unknown option '-x'"),
        (["reward", "--"], "is not an option"),
    ],
)
def test_malformed_train_arguments_are_config_errors(tokens, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_train_args(tokens)


def test_readme_style_run_with_trl_names_and_config_after_the_recipe(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": "tiny", "data": "arithmetic", "max_steps": 5, "num_train": 8, "num_eval": 0, "batch_size": 4}))
    run = tmp_path / "run"
    argv = ["train", "reward", "--config", str(config), "--learning_rate", "1e-4", "--max-steps=1", f"output_dir={run}", "--progress", "false"]
    assert main(argv) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["lr"] == 1e-4 and saved["max_steps"] == 1 and saved["model"] == "tiny" and saved["progress"] is False


def test_held_out_rows_of_a_file_are_what_the_reward_recipe_evaluates(tmp_path, capsys):
    rows = [{"prompt": f"q{i}", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(30)]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    run = tmp_path / "run"
    argv = ["train", "reward", "model=tiny", f"data={data}", "max_steps=1", "batch_size=4", f"output_dir={run}", "progress=false", "eval_fraction=0.2"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "6 of 30 rows (6 of 30 prompts) held out for evaluation" in captured.err
    assert "24 training pairs, 6 evaluation pairs" in captured.out
    assert json.loads((run / "eval.json").read_text())["num_pairs"] == 6


# ---- prefrl eval on a file ---------------------------------------------------------------------------
@pytest.fixture
def exported(tmp_path):
    path = tmp_path / "arith.jsonl"
    assert main(["data", "export", "arithmetic", "--n", "230", "--split", "test", "--out", str(path)]) == 0
    return path


def test_eval_preference_scores_every_row_of_a_file_and_says_so(exported, capsys):
    capsys.readouterr()
    assert main(["eval", "preference", "--model", "gold:arithmetic", "--data", str(exported), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_pairs"] == report["num_scored"] == report["num_rows"] == 230  # not the first 200
    assert main(["eval", "preference", "--model", "gold:arithmetic", "--data", str(exported)]) == 0
    assert f"scored every row of {exported}" in capsys.readouterr().out
    assert main(["eval", "preference", "--model", "gold:arithmetic", "--data", str(exported), "--num", "30"]) == 0
    out = capsys.readouterr().out
    assert "on 30 pairs" in out and "the first 30 of 230 rows (--num 30)" in out


def test_eval_preference_on_a_task_generates_its_test_split(capsys):
    assert main(["eval", "preference", "--model", "gold:arithmetic", "--data", "arithmetic", "--num", "12", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_pairs"] == 12 and report["split"] == "test"


def test_eval_split_test_of_a_file_is_the_held_out_part(exported, capsys):
    held = load_preference_pairs(str(exported), "test")
    capsys.readouterr()
    assert main(["eval", "preference", "--model", "gold:arithmetic", "--data", str(exported), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_pairs"] == len(held) < 230


def test_eval_winrate_compares_on_every_prompt_of_a_file(tmp_path, capsys):
    path = tmp_path / "prompts.jsonl"
    assert main(["data", "export", "arithmetic", "--n", "7", "--split", "test", "--out", str(path)]) == 0
    capsys.readouterr()
    argv = ["eval", "winrate", "--policy", "tiny", "--baseline", "tiny", "--judge", "gold:arithmetic", "--data", str(path), "--max-new-tokens", "2", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_prompts"] == report["num_scored"] == 7
