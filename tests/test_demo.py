import json

from prefrl.demo import DemoBudget, run_demo


def test_demo_runs_end_to_end_on_the_tiny_model(tmp_path):
    budget = DemoBudget(reward_steps=2, reward_batch=2, eval_pairs=4, sppo_iterations=2, sppo_steps=1, sppo_prompts=4, sppo_samples=2, max_new_tokens=6, eval_prompts=3, bf16=False)
    summary = run_demo(output_dir=str(tmp_path), model="tiny", budget=budget)
    assert set(summary) >= {"reward_before", "reward_after", "sppo"}
    assert [s["iteration"] for s in summary["sppo"]] == [1, 2] and "gold_win_rate" in summary["sppo"][0]
    assert json.loads((tmp_path / "demo.json").read_text())["reward_after"]["num_pairs"] == 4
    assert (tmp_path / "demo.png").stat().st_size > 1000
