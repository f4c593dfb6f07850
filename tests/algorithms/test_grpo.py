"""GRPO / RLOO on the tiny model: CLI smoke, learning a synthetic reward, reward-model source, LoRA."""

import json

import pytest
import torch

from prefrl.algorithms import grpo
from prefrl.algorithms.grpo import GRPOConfig, RLOOConfig, train_group_policy
from prefrl.algorithms.reward import RewardConfig, train_reward
from prefrl.cli import main
from prefrl.engine.metrics import read_metrics
from prefrl.errors import ConfigError
from tests.algorithms.rl_helpers import DigitShare, ResponseLength, with_reward

SMALL = dict(model="tiny", data="arithmetic", batch_size=2, num_generations=4, max_new_tokens=8, num_eval=2, progress=False)


def series(run_dir, key):
    return [m[key] for m in read_metrics(run_dir) if key in m]


@pytest.mark.parametrize("recipe", ["grpo", "rloo"])
def test_cli_runs_with_the_gold_judge_by_default(tmp_path, recipe):
    run = tmp_path / recipe
    assert main(["train", recipe, "model=tiny", "data=arithmetic", "max_steps=2", f"output_dir={run}", "batch_size=2", "max_new_tokens=8", "num_eval=2", "kl_coef=0.04", "progress=false"]) == 0
    metrics = read_metrics(run)
    for key in ("train/reward", "train/gold_reward", "policy/kl_to_reference", "policy/entropy", "policy/clip_fraction", "policy/approx_kl", "policy/response_length", "eval/gold_reward"):
        assert any(key in m for m in metrics), key
    assert (run / "model" / "config.json").is_file()


def test_each_periodic_evaluation_keeps_its_answers(tmp_path):
    run = tmp_path / "rloo"
    assert main(["train", "rloo", "model=tiny", "data=arithmetic", "max_steps=3", "eval_steps=1", f"output_dir={run}", "batch_size=2", "max_new_tokens=8", "num_eval=3", "progress=false"]) == 0
    kept = [json.loads(line) for line in (run / "eval_answers_by_step.jsonl").read_text().splitlines()]
    # Steps 1 and 2 (the final step's answers are the "final" column of eval_answers.jsonl).
    assert [k["step"] for k in kept] == [1, 2]
    logged = {m["step"]: m["eval/gold_reward"] for m in read_metrics(run) if "eval/gold_reward" in m and "step" in m}
    for k in kept:
        assert len(k["responses"]) == len(k["lengths"]) == len(k["gold_scores"]) == 3
        assert sum(k["gold_scores"]) / 3 == pytest.approx(logged[k["step"]])


@pytest.mark.slow
@pytest.mark.parametrize("config_class", [GRPOConfig, RLOOConfig])
def test_the_loop_raises_a_learnable_reward(tmp_path, monkeypatch, config_class):
    with_reward(monkeypatch, grpo, DigitShare())
    config = config_class(output_dir=str(tmp_path / "run"), max_steps=12, lr=5e-3, kl_coef=0.0, **dict(SMALL, batch_size=4, num_generations=8, num_eval=0))
    train_group_policy(config)
    rewards = series(tmp_path / "run", "train/reward")
    assert sum(rewards[-3:]) / 3 > sum(rewards[:3]) / 3 + 0.15, rewards


def test_a_trained_reward_model_is_the_proxy_and_gold_is_logged_beside_it(tmp_path):
    rm = tmp_path / "rm"
    train_reward(RewardConfig(model="tiny", data="arithmetic", output_dir=str(rm), max_steps=1, batch_size=2, num_train=4, num_eval=0, progress=False))
    run = tmp_path / "grpo"
    train_group_policy(GRPOConfig(output_dir=str(run), max_steps=1, reward=str(rm), **SMALL))
    (step,) = [m for m in read_metrics(run) if "train/reward" in m]
    assert step["train/gold_reward"] == 0.0  # the random tiny policy never answers correctly
    assert step["train/reward"] != 0.0  # a BT score, not the gold rule
    # Gold never separates two of these samples, so the proxy's on-policy accuracy has no pair yet.
    assert step["rm/gold_pairs"] == 0 and step["rm/gold_pairs_agreeing"] == 0.0


def test_lora_policy_uses_the_base_weights_as_reference(tmp_path):
    run = tmp_path / "lora"
    train_group_policy(GRPOConfig(output_dir=str(run), max_steps=2, lora_r=4, lr=1e-2, kl_coef=0.04, **SMALL))
    kl = series(run, "policy/kl_to_reference")
    assert kl[0] == pytest.approx(0.0, abs=1e-6)  # adapter starts at zero: policy = reference
    assert (run / "model" / "config.json").is_file() and not (run / "model" / "adapter_config.json").exists()


def test_data_without_a_gold_judge_needs_a_reward_model(tmp_path):
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "hello"}\n')
    with pytest.raises(ConfigError, match="set reward="):
        GRPOConfig(data=str(data)).validate()


def test_length_debias_feeds_the_debiased_rewards_to_the_advantages(tmp_path, monkeypatch):
    # The tiny model never samples its EOS token in 16 tokens, so every length is 16 and the real slope is 0
    # (the arithmetic is tested in tests/objectives). Here a stand-in returns rewards of 0 and slope 0.5:
    # the update must see zero advantages (policy loss exactly 0), the log the slope, and train/reward
    # the source's own rewards (characters per answer, not 0).
    seen = []

    def stand_in(rewards, lengths, group_size):
        seen.append(lengths.tolist())
        return torch.zeros_like(rewards), torch.tensor(0.5)

    monkeypatch.setattr(grpo, "length_debiased_rewards", stand_in)
    with_reward(monkeypatch, grpo, ResponseLength())
    run = tmp_path / "debiased"
    train_group_policy(RLOOConfig(output_dir=str(run), max_steps=1, length_debias=True, **dict(SMALL, max_new_tokens=16)))
    assert seen == [[16] * 8]
    assert series(run, "train/reward_length_slope") == [0.5]
    assert series(run, "policy/policy_loss") == [0.0]
    assert series(run, "train/reward")[0] > 10
    plain = tmp_path / "plain"
    train_group_policy(RLOOConfig(output_dir=str(plain), max_steps=1, **SMALL))
    assert series(plain, "train/reward_length_slope") == [] and len(seen) == 1


def test_length_debias_refuses_a_source_that_scores_inside_the_update(tmp_path):
    rm = tmp_path / "rm"
    train_reward(RewardConfig(model="tiny", data="arithmetic", output_dir=str(rm), max_steps=1, batch_size=2, num_train=4, num_eval=0, progress=False))
    config = GRPOConfig(output_dir=str(tmp_path / "r2m"), max_steps=1, reward=str(rm), r2m=True, length_debias=True, **SMALL)
    with pytest.raises(ConfigError, match="length_debias=true needs the whole step's rewards"):
        train_group_policy(config)
    assert not (tmp_path / "r2m" / "model").exists()
