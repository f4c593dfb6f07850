"""GRPO (pair) on the tiny model, and the pieces it is built from."""

import json

from prefrl.algorithms.gpm_grpo import VerdictReward, judging_prompts
from prefrl.cli import main
from prefrl.data.loaders import load_preference_pairs
from prefrl.engine.metrics import read_metrics
from prefrl.preference.thinking_judge import parse_verdict


def test_parse_verdict_takes_the_last_one():
    assert parse_verdict("A looks right. Verdict: B") == "B"
    assert parse_verdict("Verdict: A\nWait. Verdict: **B**") == "B"
    assert parse_verdict("I prefer A") is None


def test_judging_prompts_randomise_the_position_and_the_reward_follows_the_label():
    pairs = load_preference_pairs("arithmetic", "train", 0, 40)
    records = judging_prompts(pairs, seed=0)
    labels = [r.extra["label"] for r in records]
    assert 10 < labels.count("A") < 30  # both positions used
    for record, pair in zip(records, pairs):
        text = record.prompt[0]["content"]
        winner_at_a = text.index(pair.chosen[-1]["content"]) < text.index("[Response B]")
        assert (record.extra["label"] == "A") == winner_at_a
    reward = VerdictReward(records)
    right = [f"Verdict: {r.extra['label']}" for r in records[:4]]
    wrong = [f"Verdict: {'B' if r.extra['label'] == 'A' else 'A'}" for r in records[:4]]
    prompts = [r.prompt for r in records[:4]]
    assert reward.score(prompts, right).tolist() == [1.0] * 4 and reward.score(prompts, wrong).tolist() == [0.0] * 4


def test_cli_train_and_eval_as_a_preference_model(tmp_path, capsys):
    run = tmp_path / "D"
    assert main(["train", "gpm-grpo", "model=tiny", "data=arithmetic", "max_steps=2", f"output_dir={run}", "num_train=8", "num_eval=2", "batch_size=2", "max_new_tokens=8", "progress=false"]) == 0
    assert any("eval/gold_reward" in m for m in read_metrics(run))
    capsys.readouterr()
    assert main(["eval", "preference", "--model", str(run), "--data", "arithmetic", "--num", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["position_consistency"] <= 1  # both orders read
