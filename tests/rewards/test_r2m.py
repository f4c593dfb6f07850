"""R2M as a reward source inside GRPO/RLOO on the tiny model."""

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
    assert main(["train", recipe, "model=tiny", "data=arithmetic", "r2m=true", f"reward={reward_model}", "max_steps=3", f"output_dir={run}", "batch_size=2", "max_new_tokens=8", "num_eval=0", "progress=false"]) == 0
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
    from prefrl.rewards import r2m as r2m_module

    snapshots = {}
    original_join = r2m_module.R2MReward.join_run

    def keep(self, *args, **kwargs):
        original_join(self, *args, **kwargs)
        snapshots["feedback"] = self
        snapshots["head"] = {k: v.clone() for k, v in self.model.head.state_dict().items()}
        snapshots["backbone"] = {k: v.clone() for k, v in self.model.base.reward_model.state_dict().items()}

    monkeypatch.setattr(r2m_module.R2MReward, "join_run", keep)
    train_group_policy(GRPOConfig(model="tiny", data="arithmetic", r2m=True, r2m_lr=1e-2, reward=str(reward_model), max_steps=2, output_dir=str(tmp_path / "g"), batch_size=2, num_generations=4, max_new_tokens=8, num_eval=0, progress=False))
    feedback = snapshots["feedback"]
    after_head = feedback.model.head.state_dict()
    after_backbone = feedback.model.base.reward_model.state_dict()
    assert any(not torch.equal(snapshots["head"][k], after_head[k]) for k in after_head)
    assert all(torch.equal(snapshots["backbone"][k], after_backbone[k]) for k in after_backbone)


@pytest.mark.parametrize("ablation", ["frozen", "noise", "no-gre", "no-bt"])
def test_ablations_run(tmp_path, reward_model, ablation):
    run = tmp_path / ablation
    train_group_policy(GRPOConfig(model="tiny", data="arithmetic", r2m=True, r2m_ablation=ablation, reward=str(reward_model), max_steps=1, output_dir=str(run), batch_size=2, max_new_tokens=6, num_eval=0, progress=False))
    (step,) = [m for m in read_metrics(run) if "rm/omega" in m]
    assert ("rm/loss" in step) == (ablation != "frozen")


def test_rewards_read_from_the_update_forward_equal_those_from_the_rollout_pass(reward_model):
    """GRPO with one clipped pass scores each micro-batch's groups with h from the update's own
    forward (trimmed, prompt encoded once); that must give the rewards the rollout's full no-grad
    pass would have given."""
    from prefrl.algorithms.grpo import group_policy_loss
    from prefrl.data.records import PromptRecord
    from prefrl.algorithms.policy_setup import micro_batch_groups
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
    train_group_policy(GRPOConfig(model="tiny", data="arithmetic", r2m=True, r2m_refresh_bf16=True, reward=str(reward_model), max_steps=2, output_dir=str(run), batch_size=2, max_new_tokens=6, num_eval=0, progress=False))
    steps = [m for m in read_metrics(run) if "rm/loss" in m]
    assert len(steps) == 2 and all(torch.isfinite(torch.tensor(m["rm/r2m_reward"])) for m in steps)


def test_scoring_inside_a_bf16_update_stays_float32(reward_model):
    """The in-update scoring runs within the engine's autocast; R2M's reward must not drop to bf16
    (at ω = 1 it is still the frozen reward to the last bit, at ω < 1 equal to scoring outside)."""
    from prefrl.rewards import PreferenceModelReward, RunContext
    from prefrl.rewards.r2m import R2MReward, R2MSettings, R2MState

    feedback = R2MReward(PreferenceModelReward(load_preference_model(str(reward_model))), R2MSettings())
    feedback.join_run(RunContext(policy_hidden_size=32, max_steps=2, seed=0, register_for_checkpointing=lambda obj: None))
    embeddings = feedback.model.reward_embeddings(["q1", "q2", "q3"], ["a", "bb", "ccc"])
    hidden, mask, rows = torch.randn(3, 6, 32), torch.ones(3, 6, dtype=torch.long), torch.arange(3)
    for omega in (1.0, 0.6):
        state = R2MState(embeddings, feedback.model.frozen_rewards(embeddings), omega, torch.full((3,), float("nan")))
        feedback.state = state
        outside = feedback.score_in_update(rows, hidden, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = feedback.score_in_update(rows, hidden.bfloat16(), mask)
        assert inside.dtype == torch.float32
        torch.testing.assert_close(inside, outside, atol=0.02, rtol=0.02)  # h itself came in bf16
        if omega == 1.0:
            assert torch.equal(inside, state.frozen)


# GRPO/RLOO r2m=true on the tiny model, 2 steps, recorded with the loop as it was before R2M became a
# reward source (algorithms/r2m.py and its three-way branch in the GRPO loop, commit a58a0f4).
BEFORE_THE_PROTOCOL = {
    # one clipped pass: h read from the update's own forward
    "grpo_in_update": [
        {"train/reward": 0.26109737157821655, "policy/policy_loss": 4.857778549194336e-06, "rm/loss": 0.8042910099029541, "rm/frozen_reward": 0.26109737157821655, "rm/omega": 1.0, "rm/bt": 0.6898623704910278, "rm/gre": 1.071291208267212},
        {"train/reward": 0.17869213223457336, "policy/policy_loss": 7.152557373046875e-07, "rm/loss": 0.8064232468605042, "rm/frozen_reward": 0.29403868317604065, "rm/omega": 0.6, "rm/bt": 0.6861461400985718, "rm/gre": 1.0870697498321533},
    ],
    # two epochs: h read from the rollout's no-grad pass
    "grpo_rollout_h": [
        {"train/reward": 0.26109737157821655, "policy/policy_loss": -0.006056938320398331, "rm/loss": 0.8042910099029541, "rm/frozen_reward": 0.26109737157821655, "rm/omega": 1.0, "rm/bt": 0.6898623704910278, "rm/gre": 1.071291208267212},
        {"train/reward": 0.1788444221019745, "policy/policy_loss": -0.002865297719836235, "rm/loss": 0.8064014911651611, "rm/frozen_reward": 0.29403868317604065, "rm/omega": 0.6, "rm/bt": 0.6861401796340942, "rm/gre": 1.0870112180709839},
    ],
    "rloo": [
        {"train/reward": 0.26109737157821655, "policy/policy_loss": 2.2351741790771484e-08, "rm/loss": 0.8042910099029541, "rm/frozen_reward": 0.26109737157821655, "rm/omega": 1.0, "rm/bt": 0.6898623704910278, "rm/gre": 1.071291208267212},
        {"train/reward": 0.1787659227848053, "policy/policy_loss": 8.381903171539307e-09, "rm/loss": 0.8064139485359192, "rm/frozen_reward": 0.29403868317604065, "rm/omega": 0.6, "rm/bt": 0.6861456632614136, "rm/gre": 1.0870399475097656},
    ],
}


def test_r2m_as_a_reward_source_gives_the_numbers_of_the_old_loop(tmp_path):
    """Same seeds, same tiny models: the protocol's hooks reproduce the old R2M branch step by step."""
    rm = tmp_path / "rm"
    train_reward(RewardConfig(model="tiny", data="arithmetic", output_dir=str(rm), max_steps=2, batch_size=2, num_train=4, num_eval=0, progress=False))
    runs = {"grpo_in_update": (GRPOConfig, {}), "grpo_rollout_h": (GRPOConfig, {"ppo_epochs": 2}), "rloo": (RLOOConfig, {})}
    for name, (config_class, extra) in runs.items():
        run = tmp_path / name
        train_group_policy(config_class(model="tiny", data="arithmetic", r2m=True, r2m_lr=1e-2, reward=str(rm), max_steps=2, output_dir=str(run), batch_size=2, num_generations=4, max_new_tokens=8, num_eval=0, progress=False, **extra))
        steps = [m for m in read_metrics(run) if "train/reward" in m]
        assert len(steps) == 2
        for got, expected in zip(steps, BEFORE_THE_PROTOCOL[name]):
            for key, value in expected.items():
                # Recorded on an AVX2 CPU; AVX-512 kernels round differently in the last bits (rm/gre 1.0712912 vs
                # 1.0712898), hence rel 1e-5. A one-pass policy loss is a sum of group-centred advantages, ~0 up to
                # that rounding (4.9e-6 recorded, 1.2e-6 on AVX-512), hence its absolute 1e-5.
                noise = 1e-5 if key == "policy/policy_loss" else 1e-9
                assert got[key] == pytest.approx(value, rel=1e-5, abs=noise), (name, key)
            assert got["rm/r2m_reward"] == got["train/reward"]
