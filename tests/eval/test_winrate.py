import json

import pytest
import torch

from prefrl.cli import main
from prefrl.eval.winrate import win_rate
from prefrl.preference.base import PreferenceModel


class Fixed(PreferenceModel):
    def __init__(self, values):
        self.values = values

    def prob(self, prompts, a, b):
        return torch.tensor([self.values[r] for r in a])


def test_win_rate_counts_and_mean():
    judge = Fixed({"w": 1.0, "t": 0.5, "l": 0.0, "p": 0.8})
    result = win_rate(judge, ["q"] * 4, ["w", "t", "l", "p"], ["x"] * 4, batch_size=3)
    assert result["win_rate"] == pytest.approx(0.575)  # (1 + 0.5 + 0 + 0.8) / 4
    assert (result["wins"], result["ties"], result["losses"]) == (2, 1, 1)
    assert result["win_rate_ci_low"] < 0.575 < result["win_rate_ci_high"]
    assert result["sign_test_p"] == 1.0  # 2 wins vs 1 loss: 2·(1 + 3)/8 capped at 1


def test_cli_winrate_of_a_policy_against_itself_is_one_half(tmp_path, capsys):
    rm = tmp_path / "rm"
    assert main(["train", "reward", "model=tiny", "data=arithmetic", "max_steps=1", f"output_dir={rm}", "num_train=4", "num_eval=0", "batch_size=2", "progress=false"]) == 0
    capsys.readouterr()
    for judge in ("gold", str(rm)):
        assert main(["eval", "winrate", "--policy", "tiny", "--baseline", "tiny", "--judge", judge, "--data", "arithmetic", "--num", "3", "--max-new-tokens", "6", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        # identical greedy responses: every comparison is a tie under any preference model
        assert report["win_rate"] == pytest.approx(0.5, abs=1e-6) and report["ties"] == 3
