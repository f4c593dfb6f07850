"""Pairwise judge training and pairwise PPO against an anchor, on the tiny model."""

import json

import pytest

from prefrl.algorithms.pairwise_ppo import PairwisePPOConfig, train_pairwise_ppo
from prefrl.cli import main
from prefrl.engine.metrics import read_metrics
from prefrl.errors import ConfigError


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("judge")
    args = ["train", "pairwise-rm", "model=tiny", "data=arithmetic", "max_steps=2", f"output_dir={run}", "num_train=8", "num_eval=8", "batch_size=2", "progress=false"]
    assert main(args) == 0
    return run


def test_pairwise_rm_eval_reports_accuracy_and_position_consistency(judge_dir, capsys):
    capsys.readouterr()
    assert main(["eval", "preference", "--model", str(judge_dir), "--data", "arithmetic", "--num", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["position_consistency"] <= 1


def test_pairwise_rm_starts_from_the_untrained_judges_position_offset(judge_dir):
    # The recipe's offset is the untrained judge's mean verdict gap over both orders of the first
    # training pairs (num_train=8 < position_calibration_pairs=32: all eight), saved in the card.
    from prefrl.data.loaders import load_preference_pairs
    from prefrl.preference.pairwise import PairwiseJudge

    untrained = PairwiseJudge.from_base("tiny")
    expected = untrained.calibrate_position(load_preference_pairs("arithmetic", "train", 0, 8))
    card = json.loads((judge_dir / "model" / "prefrl_model.json").read_text())
    assert expected != 0 and abs(card["position_offset"] - expected) < 1e-4


def test_pairwise_ppo_with_policy_anchors(judge_dir, tmp_path):
    run = tmp_path / "pppo"
    assert main(["train", "pairwise-ppo", "model=tiny", "data=arithmetic", f"reward={judge_dir}", "max_steps=2", f"output_dir={run}", "batch_size=2", "max_new_tokens=8", "num_eval=2", "anchor_source=policy", "num_train=4", "progress=false"]) == 0
    anchors = json.loads((run / "anchors.json").read_text())
    assert sorted(anchors) == ["0", "1", "2", "3"]
    rewards = [m["train/reward"] for m in read_metrics(run) if "train/reward" in m]
    assert len(rewards) == 2 and all(0.0 <= r <= 1.0 for r in rewards)  # win probabilities


def test_pairwise_ppo_gold_judge_against_dataset_references(tmp_path):
    # The built-in task's reference is the correct answer: a random policy never beats it.
    result = train_pairwise_ppo(PairwisePPOConfig(model="tiny", data="arithmetic", reward="gold:arithmetic", max_steps=1, output_dir=str(tmp_path / "g"), batch_size=2, max_new_tokens=8, num_eval=0, progress=False))
    assert not (tmp_path / "g" / "anchors.json").exists()
    rewards = [m["train/reward"] for m in read_metrics(tmp_path / "g") if "train/reward" in m]
    assert rewards == [0.0] and result["steps"] == 1


def test_pairwise_ppo_needs_a_reward_only_without_a_gold_judge(tmp_path):
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "hello"}\n')
    with pytest.raises(ConfigError, match="set reward="):
        PairwisePPOConfig(model="tiny", data=str(data), num_eval=0).validate()
    PairwisePPOConfig(model="tiny", data="arithmetic").validate()  # the gold judge against the anchor
