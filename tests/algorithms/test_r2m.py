"""R2M inside GRPO/RLOO on the tiny model."""

import pytest
import torch

from prefrl.algorithms.grpo import GRPOConfig, train_group_policy
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


@pytest.mark.parametrize("recipe", ["grpo"])  # r2m is a grpo key; rloo rejects it (tests/test_config_reads.py)
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
    train_group_policy(GRPOConfig(model="tiny", data="arithmetic", r2m=True, r2m_ablation=ablation, reward_model=str(reward_model), max_steps=1, output_dir=str(run), batch_size=2, max_new_tokens=6, num_eval=0, progress=False))
    (step,) = [m for m in read_metrics(run) if "rm/omega" in m]
    assert ("rm/loss" in step) == (ablation != "frozen")


def test_rewards_read_from_the_update_forward_equal_those_from_the_rollout_pass(reward_model):
    """GRPO with one clipped pass scores each micro-batch's groups with h from the update's own
    forward (trimmed, prompt encoded once); that must give the rewards the rollout's full no-grad
    pass would have given."""
    from prefrl.algorithms.grpo import group_policy_loss
    from prefrl.data.records import PromptRecord
    from prefrl.engine.rl import micro_batch_groups
    from prefrl.rollout import trim
    from prefrl.models.loading import load_causal_lm, load_tokenizer
    from prefrl.models.policy import PolicyModel
    from prefrl.rollout import HFGenerationBackend, SamplingParams, collect_rollout

    lm, tokenizer = load_causal_lm("tiny"), load_tokenizer("tiny")
    policy = PolicyModel(lm)
    rollout = collect_rollout(
        policy, HFGenerationBackend(lm, [tokenizer.eos_token_id], tokenizer.pad_token_id), tokenizer,
        [PromptRecord("What is 3 + 4?"), PromptRecord("Add 10 and 25"), PromptRecord("2*8=?"), PromptRecord("Hi")],
        SamplingParams(num_samples=3, max_new_tokens=9, temperature=1.0), torch.Generator().manual_seed(2), return_hidden=True,
    )
    r2m = R2MRewardModel(load_preference_model(str(reward_model)), policy_hidden_size=lm.config.hidden_size)
    torch.manual_seed(0)
    for parameter in r2m.head.parameters():  # a head away from its initialisation, so h matters
        parameter.data.add_(0.1 * torch.randn_like(parameter))
    embeddings = r2m.reward_embeddings(rollout.row_prompts, rollout.responses)
    with torch.no_grad():
        expected = r2m(embeddings, rollout.hidden_states, rollout.attention_mask, omega=0.6)

    rollout.row_index = torch.arange(rollout.num_rows)
    read = torch.full((rollout.num_rows,), float("nan"))

    def from_hidden(batch, hidden):
        rows = batch.row_index
        with torch.no_grad():
            read[rows] = r2m(embeddings[rows], hidden, batch.attention_mask, omega=0.6)
        return torch.zeros(len(rows))

    for rows in micro_batch_groups(rollout.num_rows, rollout.group_size, 2, torch.Generator().manual_seed(0)):
        group_policy_loss(policy, trim(rollout.rows(rows)), GRPOConfig(model="tiny", temperature=1.0), from_hidden)
    assert not torch.allclose(expected, r2m.frozen_rewards(embeddings), atol=1e-3)  # h does move the reward
    torch.testing.assert_close(read, expected, atol=1e-5, rtol=1e-4)


def test_a_bf16_refresh_runs_inside_grpo(tmp_path, reward_model):
    run = tmp_path / "bf16"
    train_group_policy(GRPOConfig(model="tiny", data="arithmetic", r2m=True, r2m_refresh_bf16=True, reward_model=str(reward_model), max_steps=2, output_dir=str(run), batch_size=2, max_new_tokens=6, num_eval=0, progress=False))
    steps = [m for m in read_metrics(run) if "rm/loss" in m]
    assert len(steps) == 2 and all(torch.isfinite(torch.tensor(m["rm/r2m_reward"])) for m in steps)


def test_scoring_inside_a_bf16_update_stays_float32(reward_model):
    """The in-update scoring runs within the engine's autocast; R2M's reward must not drop to bf16
    (at ω = 1 it is still the frozen reward to the last bit, at ω < 1 equal to scoring outside)."""
    from types import SimpleNamespace

    from prefrl.algorithms.r2m import R2MFeedback, R2MState

    engine = SimpleNamespace(accelerator=SimpleNamespace(register_for_checkpointing=lambda obj: None, num_processes=1))
    config = GRPOConfig(model="tiny", r2m=True, reward_model=str(reward_model))
    feedback = R2MFeedback(config, engine, load_preference_model(str(reward_model)), policy_hidden_size=32)
    embeddings = feedback.model.reward_embeddings(["q1", "q2", "q3"], ["a", "bb", "ccc"])
    hidden, mask, rows = torch.randn(3, 6, 32), torch.ones(3, 6, dtype=torch.long), torch.arange(3)
    for omega in (1.0, 0.6):
        state = R2MState(embeddings, feedback.model.frozen_rewards(embeddings), omega)
        outside = feedback.score(state, rows, hidden, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = feedback.score(state, rows, hidden.bfloat16(), mask)
        assert inside.dtype == torch.float32
        torch.testing.assert_close(inside, outside, atol=0.02, rtol=0.02)  # h itself came in bf16
        if omega == 1.0:
            assert torch.equal(inside, state.frozen)
