"""DPO family on the tiny model."""

import math

import pytest
import torch

from prefrl.algorithms import dpo
from prefrl.algorithms.dpo import DPOConfig, train_dpo
from prefrl.cli import main
from prefrl.engine.metrics import read_metrics

SMALL = dict(model="tiny", data="arithmetic", num_train=8, num_eval=4, batch_size=4, progress=False)


def losses(run):
    return [m["train/loss"] for m in read_metrics(run) if "train/loss" in m]


@pytest.mark.parametrize(
    "loss_type, first_loss",
    # the policy starts equal to the reference, so h = 0: sigmoid −log σ(0) = ln 2; ipo (0 − 1/(2·0.1))² = 25;
    # sppo_hard (0 − 5)² + (0 + 5)² = 50
    [("sigmoid", math.log(2)), ("ipo", 25.0), ("sppo_hard", 50.0)],
)
def test_cli_each_loss_type_starts_at_its_hand_computed_value(tmp_path, loss_type, first_loss):
    run = tmp_path / loss_type
    assert main(["train", "dpo", "model=tiny", "data=arithmetic", f"loss_type={loss_type}", "max_steps=2", f"output_dir={run}", "num_train=8", "num_eval=4", "batch_size=2", "progress=false"]) == 0
    assert losses(run)[0] == pytest.approx(first_loss, rel=1e-5)
    assert (run / "model" / "config.json").is_file()


def test_reference_log_probs_are_computed_once_per_pair(tmp_path, monkeypatch):
    calls = {"rows": 0}
    original = dpo.sequence_logps

    def counting(policy, batch, average):
        if not torch.is_grad_enabled():  # reference passes run without a graph
            calls["rows"] += batch["prompt_ids"].shape[0]
        return original(policy, batch, average)

    monkeypatch.setattr(dpo, "sequence_logps", counting)
    train_dpo(DPOConfig(output_dir=str(tmp_path / "r"), max_steps=6, **SMALL))  # 6 steps × 4 pairs = 3 epochs of 8 pairs
    assert calls["rows"] == 8


@pytest.mark.slow
def test_dpo_learns_to_prefer_chosen(tmp_path):
    run = tmp_path / "learn"
    train_dpo(DPOConfig(output_dir=str(run), max_steps=12, lr=1e-3, lr_scheduler="constant", warmup_ratio=0.0, **SMALL))
    accuracy = [m["train/reward_accuracy"] for m in read_metrics(run) if "train/reward_accuracy" in m]
    assert losses(run)[-1] < losses(run)[0] - 0.1 and accuracy[-1] >= 0.75
