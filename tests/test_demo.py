import json

import pytest
import yaml

from prefrl.demo import DemoBudget, run_demo


@pytest.mark.parametrize("data", ["constraints", "arithmetic"])
def test_demo_runs_end_to_end_on_the_tiny_model(tmp_path, data):
    budget = DemoBudget(reward_steps=2, reward_batch=2, eval_pairs=4, sppo_iterations=2, sppo_steps=1, sppo_prompts=4, sppo_samples=2, max_new_tokens=6, eval_prompts=3, bf16=False)
    summary = run_demo(output_dir=str(tmp_path), model="tiny", budget=budget, data=data)
    assert set(summary) >= {"reward_before", "reward_after", "sppo"}
    assert [s["iteration"] for s in summary["sppo"]] == [1, 2] and "gold_win_rate" in summary["sppo"][0]
    assert json.loads((tmp_path / "demo.json").read_text())["reward_after"]["num_pairs"] == 4
    assert (tmp_path / "demo.png").stat().st_size > 1000
    for stage in ("reward", "sppo"):  # both stages ran on the task asked for
        assert yaml.safe_load((tmp_path / stage / "config.yaml").read_text())["data"] == data
