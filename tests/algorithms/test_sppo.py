"""SPPO and iterative DPO on the tiny model."""

import json

import pytest
import torch

from prefrl.algorithms import sppo
from prefrl.algorithms.sppo import SPPOConfig, preference_matrices, train_sppo
from prefrl.rewards import PreferenceModelReward
from prefrl.cli import main
from prefrl.engine.metrics import read_metrics
from prefrl.preference.base import PointwisePreferenceModel, PreferenceModel
from tests.algorithms.rl_helpers import DigitShare, with_reward

SMALL = dict(model="tiny", data="arithmetic", batch_size=2, prompts_per_iteration=4, max_new_tokens=8, num_eval=2, progress=False)


def test_cli_writes_each_iterations_data_and_policy(tmp_path):
    run = tmp_path / "D"
    assert main(["train", "sppo", "model=tiny", "data=arithmetic", "iterations=2", "max_steps=2", f"output_dir={run}", "batch_size=2", "prompts_per_iteration=4", "max_new_tokens=8", "num_eval=2", "progress=false"]) == 0
    for iteration in (1, 2):
        folder = run / f"iteration-{iteration}"
        assert (folder / "model" / "config.json").is_file()
        records = [json.loads(line) for line in (folder / "generated.jsonl").read_text().splitlines()]
        assert len(records) == 4
        for record in records:
            matrix = torch.tensor(record["matrix"])
            assert matrix.shape == (5, 5) and torch.allclose(matrix + matrix.T, torch.ones(5, 5))
            torch.testing.assert_close(torch.tensor(record["win_rates"]), matrix.mean(-1))  # diagonal ½ included
            assert len(record["responses"]) == 5 and len(record["kept"]) == 2
    evaluations = [m for m in read_metrics(run) if "eval/iteration" in m]
    assert [m["eval/iteration"] for m in evaluations] == [1, 2]
    for m in evaluations:  # paired with the initial policy's answers to the same 2 prompts
        assert m["eval/gold_vs_initial/fixed"] + m["eval/gold_vs_initial/broken"] + m["eval/gold_vs_initial/unchanged"] == 2
        assert 0 <= m["eval/gold_vs_initial/sign_test_p"] <= 1


class CountingPointwise(PointwisePreferenceModel):
    def __init__(self):
        self.rows = 0

    def score(self, prompts, responses):
        self.rows += len(responses)
        return torch.tensor([float(len(r)) for r in responses])


class CountingPairwise(PreferenceModel):
    def __init__(self):
        self.rows = 0

    def prob(self, prompts, a, b):
        self.rows += len(a)
        return torch.tensor([0.9 if len(x) > len(y) else 0.2 for x, y in zip(a, b)])


def test_pointwise_oracle_needs_k_scores_per_prompt_and_pairwise_fills_both_triangles():
    responses = [["a", "bbb", "cc"], ["dd", "e", "fff"]]
    pointwise = CountingPointwise()
    matrix = preference_matrices(PreferenceModelReward(pointwise), ["p", "q"], responses)
    assert pointwise.rows == 6  # K per prompt, not K²
    assert matrix[0, 1, 0].item() == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())  # σ(3 − 1)
    pairwise = CountingPairwise()
    matrix = preference_matrices(PreferenceModelReward(pairwise), ["p", "q"], responses)
    assert pairwise.rows == 6  # K(K−1)/2 = 3 pairs per prompt
    assert matrix[0, 0, 1].item() == pytest.approx(0.2) and matrix[0, 1, 0].item() == pytest.approx(0.8)
    assert torch.all(matrix.diagonal(dim1=-2, dim2=-1) == 0.5)


@pytest.mark.slow
def test_resume_within_an_iteration_reuses_its_data_and_losses(tmp_path, monkeypatch):
    with_reward(monkeypatch, sppo, DigitShare())
    config = dict(SMALL, iterations=2, max_steps=2, save_steps=1, eta=5.0, lr=1e-3, num_eval=0)
    train_sppo(SPPOConfig(output_dir=str(tmp_path / "full"), **config))
    reference = [m["train/loss"] for m in read_metrics(tmp_path / "full") if "train/loss" in m]

    from prefrl.engine.engine import Engine

    original = Engine.end_step

    def crash(self):
        original(self)
        if self.step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(Engine, "end_step", crash)
    with pytest.raises(KeyboardInterrupt):
        train_sppo(SPPOConfig(output_dir=str(tmp_path / "cut"), **config))
    monkeypatch.setattr(Engine, "end_step", original)
    generated = tmp_path / "cut" / "iteration-2" / "generated.jsonl"
    before = generated.read_text()
    calls = {"n": 0}
    real_generate = sppo.generate_iteration
    monkeypatch.setattr(sppo, "generate_iteration", lambda *a, **k: (calls.__setitem__("n", calls["n"] + 1), real_generate(*a, **k))[1])
    train_sppo(SPPOConfig(output_dir=str(tmp_path / "cut"), resume=True, **config))
    assert calls["n"] == 0 and generated.read_text() == before
    assert [m["train/loss"] for m in read_metrics(tmp_path / "cut") if "train/loss" in m] == reference


@pytest.mark.parametrize("variant", [dict(loss="sigmoid"), dict(loss="ipo"), dict(loss="sppo_hard"), dict(keep="all"), dict(log_partition="estimate")])
def test_variants_run(tmp_path, monkeypatch, variant):
    with_reward(monkeypatch, sppo, DigitShare())
    result = train_sppo(SPPOConfig(output_dir=str(tmp_path / "v"), iterations=1, max_steps=1, eta=5.0, **dict(SMALL, num_eval=0), **variant))
    assert result["steps"] == 1


@pytest.mark.slow
def test_self_play_raises_the_oracles_preference(tmp_path, monkeypatch):
    with_reward(monkeypatch, sppo, DigitShare())
    run = tmp_path / "learn"
    train_sppo(SPPOConfig(output_dir=str(run), iterations=4, max_steps=4, eta=20.0, lr=2e-3, lr_scheduler="constant", keep="all", **dict(SMALL, prompts_per_iteration=8, batch_size=4, num_eval=0)))
    records = [[json.loads(l) for l in (run / f"iteration-{i}" / "generated.jsonl").read_text().splitlines()] for i in (1, 4)]
    share = [sum(DigitShare().score([""] * 40, [r for rec in recs for r in rec["responses"]]).tolist()) / 40 for recs in records]
    assert share[1] > share[0] + 0.05, share


@pytest.mark.parametrize("loss", ["ipo", "sigmoid", "sppo_hard"])
def test_dpo_family_losses_match_the_dpo_recipe_on_the_same_pair(loss):
    """SPPO's `loss=ipo|sigmoid|sppo_hard` and the `dpo` recipe read the same sequence log-probs
    (per-token means for IPO, sums otherwise): on one pair, with π_t as the reference, the same loss."""
    from prefrl.algorithms.dpo import DPOConfig, PairExample, collate_pairs_for_policy, dpo_step, sequence_logps
    from prefrl.models.loading import load_causal_lm
    from prefrl.models.policy import PolicyModel

    torch.manual_seed(0)
    policy, reference = PolicyModel(load_causal_lm("tiny")), PolicyModel(load_causal_lm("tiny"))
    with torch.no_grad():  # a reference that differs from the policy, so the log-ratios are not 0
        for parameter in reference.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    prompt, chosen, rejected = [5, 9, 14, 20], [30, 31, 2], [40, 41, 42, 43, 44, 45, 2]  # lengths 3 and 7
    pair = collate_pairs_for_policy([PairExample(prompt, chosen, rejected)], pad_token_id=0)
    dpo_loss_value, _ = dpo_step(policy, pair, reference, DPOConfig(loss_type=loss, beta=0.1))

    with torch.no_grad():
        reference_sums = sequence_logps(reference, pair, "sigmoid")[0]  # π_t's summed log-probs, as SPPO stores them
    record = {"prompt_ids": prompt, "response_ids": [chosen, rejected], "policy_logps": reference_sums.tolist(), "win_rates": [1.0, 0.0], "log_partition": 0.0, "kept": [0, 1]}
    config = SPPOConfig(loss=loss, beta=0.1)
    sppo_loss_value, _ = sppo.self_play_loss(policy, sppo.collate_kept([record], config, pad_token_id=0), config)
    torch.testing.assert_close(sppo_loss_value, dpo_loss_value, rtol=1e-5, atol=1e-6)

    if loss == "ipo":  # by hand: length-averaged log-ratios, (h − 1/(2β))²
        with torch.no_grad():
            sums = sequence_logps(policy, pair, "sigmoid")[0]
        lengths = torch.tensor([3.0, 7.0])
        ratios = (sums - reference_sums) / lengths
        expected = (ratios[0] - ratios[1] - 1 / (2 * 0.1)) ** 2
        torch.testing.assert_close(sppo_loss_value.detach(), expected, rtol=1e-5, atol=1e-6)
