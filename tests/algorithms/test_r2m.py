"""R2M inside GRPO/RLOO on the tiny model."""

import pytest
import torch

from prefrl.algorithms.grpo import GRPOConfig, RLOOConfig, train_group_policy
from prefrl.algorithms.reward import RewardConfig, train_reward
from prefrl.cli import main
from prefrl.engine.metrics import read_metrics
from prefrl.preference import load_preference_model
from prefrl.preference.r2m import R2MRewardModel


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory):
    run = tmp_path_factory.mktemp("rm")
    train_reward(RewardConfig(model="tiny", data="arithmetic", output_dir=str(run), max_steps=2, batch_size=2, num_train=4, num_eval=0, progress=False))
    return run


@pytest.mark.parametrize("recipe", ["grpo", "rloo"])
def test_cli_logs_the_r2m_quantities(tmp_path, reward_model, recipe):
    run = tmp_path / recipe
    assert main(["train", recipe, "model=tiny", "data=arithmetic", "r2m=true", f"reward_model={reward_model}", "max_steps=3", f"output_dir={run}", "batch_size=2", "max_new_tokens=8", "num_eval=0", "progress=false"]) == 0
    steps = [m for m in read_metrics(run) if "rm/omega" in m]
    assert len(steps) == 3 and steps[0]["rm/omega"] == 1.0 and steps[-1]["rm/omega"] < 1.0
    for key in ("rm/bt", "rm/gre", "rm/r2m_reward", "rm/frozen_reward"):
        assert key in steps[-1], key


def test_with_omega_one_the_r2m_reward_is_the_frozen_reward_exactly(reward_model):
    base = load_preference_model(str(reward_model))
    r2m = R2MRewardModel(base, policy_hidden_size=32)
    embeddings = r2m.reward_embeddings(["q1", "q2"], ["a", "bb"])
    hidden, mask = torch.randn(2, 7, 32), torch.ones(2, 7, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(r2m(embeddings, hidden, mask, omega=1.0), r2m.frozen_rewards(embeddings))
        torch.testing.assert_close(r2m.frozen_rewards(embeddings), base.score(["q1", "q2"], ["a", "bb"]), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(r2m(embeddings, hidden, mask, omega=0.5), r2m.frozen_rewards(embeddings))


def test_an_update_moves_the_head_and_never_the_backbone(tmp_path, reward_model, monkeypatch):
    from prefrl.algorithms import r2m as r2m_module

    snapshots = {}
    original_init = r2m_module.R2MFeedback.__init__

    def keep(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        snapshots["feedback"] = self
        snapshots["head"] = {k: v.clone() for k, v in self.model.head.state_dict().items()}
        snapshots["backbone"] = {k: v.clone() for k, v in self.model.base.reward_model.state_dict().items()}

    monkeypatch.setattr(r2m_module.R2MFeedback, "__init__", keep)
    train_group_policy(GRPOConfig(model="tiny", data="arithmetic", r2m=True, r2m_lr=1e-2, reward_model=str(reward_model), max_steps=2, output_dir=str(tmp_path / "g"), batch_size=2, num_generations=4, max_new_tokens=8, num_eval=0, progress=False))
    feedback = snapshots["feedback"]
    after_head = feedback.model.head.state_dict()
    after_backbone = feedback.model.base.reward_model.state_dict()
    assert any(not torch.equal(snapshots["head"][k], after_head[k]) for k in after_head)
    assert all(torch.equal(snapshots["backbone"][k], after_backbone[k]) for k in after_backbone)


@pytest.mark.parametrize("ablation", ["frozen", "noise", "no-gre", "no-bt"])
def test_ablations_run(tmp_path, reward_model, ablation):
    run = tmp_path / ablation
    train_group_policy(RLOOConfig(model="tiny", data="arithmetic", r2m=True, r2m_ablation=ablation, reward_model=str(reward_model), max_steps=1, output_dir=str(run), batch_size=2, max_new_tokens=6, num_eval=0, progress=False))
    (step,) = [m for m in read_metrics(run) if "rm/omega" in m]
    assert ("rm/loss" in step) == (ablation != "frozen")
