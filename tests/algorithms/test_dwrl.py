"""DWRL recipe on the tiny model: every ablation runs, logs what the paper tracks, and saves a
dialog GPM that `prefrl eval preference` reads."""

import json

import pytest

from prefrl.algorithms.dwrl import DWRLConfig, train_dwrl
from prefrl.cli import main
from prefrl.engine.metrics import read_metrics

SMALL = dict(model="tiny", data="arithmetic", num_train=8, num_eval=4, batch_size=2, n_thoughts=2, max_thought_tokens=6, eval_n_thoughts=2, progress=False)


def test_cli_train_and_eval(tmp_path, capsys):
    run = tmp_path / "D"
    assert main(["train", "dwrl", "model=tiny", "data=arithmetic", "max_steps=2", f"output_dir={run}", "num_train=8", "num_eval=4", "batch_size=2", "n_thoughts=2", "max_thought_tokens=6", "progress=false"]) == 0
    metrics = read_metrics(run)
    for key in ("dwrl/weight_mean", "dwrl/group_score_entropy", "dwrl/p_chosen", "dwrl/p_rejected", "dwrl/pair_accuracy", "dwrl/thought_length", "dwrl/thought_clip_fraction"):
        assert any(key in m for m in metrics), key
    capsys.readouterr()
    assert main(["eval", "preference", "--model", str(run), "--data", "arithmetic", "--num", "4", "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1


@pytest.mark.parametrize("ablation", [dict(use_misalignment_weight=False), dict(thoughts="fixed"), dict(thoughts="none"), dict(subtract_baseline=False)])
def test_ablations_run(tmp_path, ablation):
    result = train_dwrl(DWRLConfig(output_dir=str(tmp_path / "a"), max_steps=2, **SMALL, **ablation))
    assert result["steps"] == 2 and "accuracy" in result["eval"]
    metrics = [m for m in read_metrics(tmp_path / "a") if "dwrl/weight_mean" in m]
    if ablation.get("use_misalignment_weight") is False:
        assert all(m["dwrl/weight_mean"] == 1.0 for m in metrics)
    if ablation.get("thoughts") in ("fixed", "none"):  # no thought step
        assert not any("dwrl/thought_loss" in m for m in read_metrics(tmp_path / "a"))
    if ablation.get("thoughts") == "none":
        assert all(m["dwrl/thought_length"] == 0 for m in metrics)


def test_scoring_step_raises_pair_accuracy_on_fixed_thoughts(tmp_path):
    run = tmp_path / "learn"
    train_dwrl(DWRLConfig(output_dir=str(run), max_steps=15, lr=2e-3, lr_scheduler="constant", warmup_ratio=0.0, thoughts="fixed", **dict(SMALL, num_train=4, batch_size=4, num_eval=0)))
    losses = [m["dwrl/score_loss"] for m in read_metrics(run) if "dwrl/score_loss" in m]
    assert losses[-1] < losses[0] * 0.5, losses
