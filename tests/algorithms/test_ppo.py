"""PPO on the tiny model: CLI smoke, learning a synthetic reward, exact resume."""

import pytest
import torch

from prefrl.algorithms import ppo
from prefrl.algorithms.ppo import PPOConfig, per_token_rewards, train_ppo
from prefrl.cli import main
from prefrl.engine import checkpoint as ckpt
from prefrl.engine.metrics import read_metrics
from tests.algorithms.rl_helpers import DigitShare, with_reward

SMALL = dict(model="tiny", data="arithmetic", batch_size=4, max_new_tokens=8, num_eval=0, progress=False)


def series(run_dir, key):
    return [m[key] for m in read_metrics(run_dir) if key in m]


def test_per_token_rewards_put_the_score_on_the_last_token():
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.5, 9.0, 9.0]])
    rewards = per_token_rewards(torch.tensor([2.0, -1.0]), kl, mask, kl_coef=0.5)
    # row 0: −0.05, −0.1, −0.15 + 2; row 1: −0.25 − 1, then padding stays 0
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, -0.1, 1.85], [-1.25, 0.0, 0.0]]))


def test_cli_runs(tmp_path):
    run = tmp_path / "ppo"
    assert main(["train", "ppo", "model=tiny", "data=arithmetic", "max_steps=2", f"output_dir={run}", "batch_size=2", "max_new_tokens=8", "num_eval=2", "ppo_epochs=2", "kl_coef=0.05", "progress=false"]) == 0
    metrics = read_metrics(run)
    for key in ("policy/value_loss", "policy/explained_variance", "train/gold_reward", "policy/kl_to_reference", "eval/gold_reward"):
        assert any(key in m for m in metrics), key


@pytest.mark.slow
def test_ppo_raises_a_learnable_reward(tmp_path, monkeypatch):
    with_reward(monkeypatch, ppo, DigitShare())
    train_ppo(PPOConfig(output_dir=str(tmp_path / "run"), max_steps=10, lr=3e-3, kl_coef=0.0, num_generations=4, ppo_epochs=2, **SMALL))
    rewards = series(tmp_path / "run", "train/reward")
    assert sum(rewards[-3:]) / 3 > sum(rewards[:3]) / 3 + 0.1, rewards


@pytest.mark.slow
def test_resumed_ppo_continues_the_same_loss_sequence(tmp_path, monkeypatch):
    with_reward(monkeypatch, ppo, DigitShare())
    config = dict(SMALL, max_steps=4, save_steps=2, lr=3e-3, ppo_epochs=2, num_generations=2)
    train_ppo(PPOConfig(output_dir=str(tmp_path / "full"), **config))
    reference = series(tmp_path / "full", "policy/loss")

    from prefrl.engine.engine import Engine

    original_end_step = Engine.end_step

    def crash_after_step_three(self):
        original_end_step(self)
        if self.step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(Engine, "end_step", crash_after_step_three)
    with pytest.raises(KeyboardInterrupt):
        train_ppo(PPOConfig(output_dir=str(tmp_path / "cut"), **config))
    monkeypatch.setattr(Engine, "end_step", original_end_step)
    assert ckpt.latest_checkpoint(tmp_path / "cut").name == ckpt.step_name(2)
    train_ppo(PPOConfig(output_dir=str(tmp_path / "cut"), resume=True, **config))
    assert series(tmp_path / "cut", "policy/loss") == reference
    assert len(reference) == 4
