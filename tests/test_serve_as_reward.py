"""`prefrl serve` as the `reward=` of a prefrl run (issue 13's "done when"): the real server on
loopback, the real HTTP client (RemoteReward), a real `prefrl train grpo` through the CLI."""

from __future__ import annotations

import threading

import pytest
import torch

from prefrl.algorithms.reward import RewardConfig, train_reward
from prefrl.cli import main
from prefrl.data.loaders import load_prompts
from prefrl.engine.metrics import read_metrics
from prefrl.preference import GoldJudge, load_preference_model
from prefrl.rewards import RemoteReward, RewardRows
from prefrl.serve import PreferenceServer
from tests.rewards.recording import record_scores

TINY_GRPO = ["model=tiny", "data=arithmetic", "max_steps=1", "batch_size=2", "num_generations=2", "max_new_tokens=6", "num_eval=0", "progress=false"]


def serve_in_thread(model, **options) -> PreferenceServer:
    server = PreferenceServer(model, port=0, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def gold_server():
    server = serve_in_thread(GoldJudge("arithmetic"))
    yield server
    server.shutdown()
    server.server_close()


def reward_url(server: PreferenceServer) -> str:
    return f"{server.url}/get_reward"


def test_a_served_gold_judge_gives_the_gold_judges_scores_through_the_http_client(gold_server):
    """The prompts as the dataset holds them (chat messages), the reference answer (gold 1) and a
    wrong one (gold 0): the served scores are the in-process gold judge's, row for row."""
    records = load_prompts("arithmetic", "train", 0, 3)
    prompts = [r.prompt for r in records for _ in range(2)]
    responses = [answer for r in records for answer in (r.reference[-1]["content"], "The answer is -1.")]
    served = RemoteReward(reward_url(gold_server), timeout=10, retries=0).score(RewardRows(prompts, responses))
    expected = GoldJudge("arithmetic").score(prompts, responses)
    assert expected.tolist() == [1.0, 0.0] * 3  # the rows can tell a wrong server from a right one
    assert torch.equal(served, expected)


def test_grpo_trained_on_a_served_gold_judge_logs_the_gold_reward_as_its_reward(tmp_path, gold_server, monkeypatch):
    scored = record_scores(monkeypatch, RemoteReward)
    run = tmp_path / "grpo"
    assert main(["train", "grpo", *TINY_GRPO, f"reward={reward_url(gold_server)}", f"output_dir={run}"]) == 0
    (rows, scores), = scored  # one step, one call to the server
    assert len(rows) == 4  # batch_size prompts × num_generations samples
    assert torch.equal(scores, GoldJudge("arithmetic").score(rows.prompts, rows.responses))
    (step,) = [m for m in read_metrics(run) if "train/reward" in m]
    assert step["train/reward"] == pytest.approx(float(scores.mean()))
    assert step["train/reward"] == step["train/gold_reward"]


@pytest.fixture(scope="module")
def reward_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("bt-rm")
    train_reward(RewardConfig(model="tiny", data="arithmetic", output_dir=str(run), max_steps=2, batch_size=2, num_train=4, num_eval=0, progress=False))
    return run


def test_a_served_reward_model_run_scores_as_the_model_does_in_process(reward_run):
    in_process = load_preference_model(str(reward_run))
    server = serve_in_thread(load_preference_model(str(reward_run)), batch_size=2)
    try:
        records = load_prompts("arithmetic", "train", 0, 3)
        prompts = [r.prompt for r in records] + ["What is 2 + 2?"]
        responses = [r.reference[-1]["content"] for r in records] + ["The answer is 5, a longer reply."]
        served = RemoteReward(reward_url(server), timeout=30, retries=0).score(RewardRows(prompts, responses))
    finally:
        server.shutdown()
        server.server_close()
    expected = in_process.score(prompts, responses)
    assert len(set(expected.tolist())) == len(expected)  # distinct scores: a row mix-up would show
    torch.testing.assert_close(served, expected.float(), atol=1e-5, rtol=1e-5)


def test_grpo_trains_on_a_served_reward_model_run(tmp_path, reward_run, monkeypatch):
    server = serve_in_thread(load_preference_model(str(reward_run)))
    scored = record_scores(monkeypatch, RemoteReward)
    run = tmp_path / "grpo"
    try:
        assert main(["train", "grpo", *TINY_GRPO, f"reward={reward_url(server)}", f"output_dir={run}"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    (rows, scores), = scored
    torch.testing.assert_close(scores, load_preference_model(str(reward_run)).score(rows.prompts, rows.responses).float(), atol=1e-5, rtol=1e-5)
    (step,) = [m for m in read_metrics(run) if "train/reward" in m]
    assert step["train/reward"] == pytest.approx(float(scores.mean()), abs=1e-6)
