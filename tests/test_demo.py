import json

import pytest
import yaml

from prefrl.demo import DemoBudget, gold_verdict, run_demo
from prefrl.engine.metrics import read_metrics


@pytest.mark.parametrize("data", ["constraints", "arithmetic"])
def test_demo_runs_end_to_end_on_the_tiny_model(tmp_path, data):
    budget = DemoBudget(reward_steps=2, reward_batch=2, eval_pairs=4, policy_steps=2, policy_prompts=2, policy_samples=2, max_new_tokens=6, eval_prompts=3, bf16=False)
    summary = run_demo(output_dir=str(tmp_path), model="tiny", budget=budget, data=data)
    assert set(summary) >= {"reward_before", "reward_after", "policy_before", "policy_after", "curve"}
    assert "test" in summary["reward_after"] and summary["reward_after"]["test"]["num_pairs"] == 4
    after = summary["policy_after"]
    assert after["eval/gold_vs_initial/fixed"] + after["eval/gold_vs_initial/broken"] + after["eval/gold_vs_initial/unchanged"] == 3
    assert [c["step"] for c in summary["curve"]] == [1, 2]  # proxy and gold of every step's samples
    assert json.loads((tmp_path / "demo.json").read_text())["policy_after"]["eval/gold_reward"] == after["eval/gold_reward"]
    assert (tmp_path / "demo.png").stat().st_size > 1000
    for stage in ("reward", "rloo"):  # both stages ran on the task asked for
        assert yaml.safe_load((tmp_path / stage / "config.yaml").read_text())["data"] == data
    rloo_config = yaml.safe_load((tmp_path / "rloo" / "config.yaml").read_text())
    assert rloo_config["reward"] == str(tmp_path / "reward")
    assert rloo_config["length_debias"] is True  # the demo's RM pays for brevity (docs/benchmarks.md, the demo)
    assert all("train/reward_length_slope" in row for row in read_metrics(tmp_path / "rloo") if "train/reward" in row)


@pytest.mark.parametrize(
    ("fixed", "broken", "p", "says"),
    [
        (41, 17, 0.0022, "rose significantly"),
        (11, 36, 0.00035, "fell significantly"),
        (10, 6, 0.45, "No significant change"),
        (3, 3, 1.0, "No significant change"),
    ],
)
def test_gold_verdict_names_the_direction(fixed, broken, p, says):
    assert says in gold_verdict(fixed, broken, p)
