"""DWRL recipe on the tiny model: every ablation runs, logs what the paper tracks, and saves a
dialog GPM that `prefrl eval preference` reads."""

import json
import math
from types import SimpleNamespace

import pytest
import torch

from prefrl.algorithms.dwrl import (
    DialogPair, DWRLConfig, micro_batches, pair_dialogs, scoring_batches, scoring_step_loss, split_sides, thought_batches, thought_step_loss, train_dwrl,
)
from prefrl.cli import main
from prefrl.engine.metrics import read_metrics
from prefrl.errors import ConfigError
from prefrl.objectives.dwrl import dwrl_surrogate_loss, dwrl_thought_advantages, group_scores, misalignment_weight
from prefrl.preference import load_preference_model
from prefrl.preference.dialog import DialogGPM

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


@pytest.mark.slow
def test_scoring_step_fits_the_pairs_on_fixed_thoughts(tmp_path):
    run = tmp_path / "learn"
    train_dwrl(DWRLConfig(output_dir=str(run), max_steps=15, lr=2e-3, lr_scheduler="constant", warmup_ratio=0.0, thoughts="fixed", **dict(SMALL, num_train=4, batch_size=4, num_eval=0)))
    steps = [m for m in read_metrics(run) if "dwrl/weight_mean" in m]
    # w = p̂⁻/(p̂⁺ + p̂⁻) is the model's probability of the wrong order: the scoring step drives it down
    # on the four training pairs and orders all of them (a wrong sign would push it up).
    # Measured: 0.50 at step 1, 0.07–0.28 over the last five.
    late = [m["dwrl/weight_mean"] for m in steps[-5:]]
    assert sum(late) / len(late) < 0.5 * steps[0]["dwrl/weight_mean"], [m["dwrl/weight_mean"] for m in steps]
    assert all(m["dwrl/pair_accuracy"] == 1.0 for m in steps[-5:])


def test_thought_step_clips_one_ratio_per_thought():
    """ρᵢ = π(oᵢ)/π_old(oᵢ) of the whole thought. Thought 1: log ρ = 0.5, ρ = 1.6487 > 1.2, A = +0.5 →
    clipped term 1.2·0.5; thought 2: log ρ = −1, ρ = 0.3679 < 0.8, A = −0.25 → min(−0.0920, −0.2) = −0.2.
    Loss = −(0.6 − 0.2) / 1 pair = −0.4, both thoughts clipped (no gradient)."""
    new = torch.tensor([-1.0, -2.0], requires_grad=True)
    model = lambda dialogs: SimpleNamespace(thought_logprobs=new)  # noqa: E731
    batch = {"dialogs": None, "count": 1, "advantages": torch.tensor([0.5, -0.25]), "old_thought_logprobs": torch.tensor([-1.5, -1.0])}
    loss, stats = thought_step_loss(model, batch, DWRLConfig(clip_eps=0.2))
    assert math.isclose(loss.item(), -0.4, rel_tol=1e-6)
    assert float(stats["clip_fraction"]) == 1.0
    loss.backward()
    assert torch.equal(new.grad, torch.zeros(2))
    # inside the clip range the gradient is −A·ρ/pairs per thought: ρ = e^{0.1}, e^{−0.1}
    new = torch.tensor([-1.4, -1.1], requires_grad=True)
    model = lambda dialogs: SimpleNamespace(thought_logprobs=new)  # noqa: E731
    thought_step_loss(model, batch, DWRLConfig(clip_eps=0.2))[0].backward()
    torch.testing.assert_close(new.grad, torch.tensor([-0.5 * math.exp(0.1), 0.25 * math.exp(-0.1)]))


def test_pre_filled_thoughts_come_from_the_initial_model_in_evaluation_too(tmp_path):
    run = tmp_path / "fixed"
    train_dwrl(DWRLConfig(output_dir=str(run), max_steps=3, lr=1e-2, lr_scheduler="constant", warmup_ratio=0.0, thoughts="fixed", **dict(SMALL, num_eval=0)))
    trained, initial = load_preference_model(str(run / "model")), DialogGPM.from_base("tiny", n_thoughts=2, max_thought_tokens=6)
    assert json.loads((run / "model" / "prefrl_model.json").read_text())["thought_model"] == "tiny"
    changed = [not torch.equal(a, b) for a, b in zip(trained.scorer.lm.parameters(), initial.scorer.lm.parameters())]
    assert any(changed)  # the scorer moved, so thoughts from it would not be the initial model's
    prefixes, _ = initial.dialog_parts(["What is 2+2?", "Say hi"], ["4", "hello"])
    sample = lambda gpm: gpm.sample_thoughts(prefixes, 2, torch.Generator().manual_seed(3))  # noqa: E731
    assert sample(trained) == sample(initial)


def test_batch_size_must_split_into_equal_micro_batches(tmp_path):
    with pytest.raises(ConfigError, match="divisible"):
        train_dwrl(DWRLConfig(output_dir=str(tmp_path / "x"), max_steps=1, gradient_accumulation_steps=2, **dict(SMALL, batch_size=3)))


@pytest.mark.parametrize("pieces", [1, 2])
def test_the_two_steps_as_wired_have_the_gradient_of_the_dwrl_surrogate(pieces):
    """At ρ = 1 (no update in between, so w and ω̃ recomputed are the same) the scoring step plus the
    thought step, built and micro-batched the way the recipe does it, have the gradient of the
    unclipped DWRL surrogate on the same forward (which the estimator test checks against the exact
    gradient): any slip in row order, side split, advantage indexing or scale shows here."""
    torch.manual_seed(0)
    gpm = DialogGPM.from_base("tiny", n_thoughts=3, max_thought_tokens=5)
    examples = [("What is 2+2?", "4", "5"), ("Say hi", "hello", "go away")]
    pairs = [DialogPair(*(tuple(part) for part in gpm.dialog_parts([x, x], [chosen, rejected]))) for x, chosen, rejected in examples]
    count, n = len(pairs), 3
    thoughts = gpm.sample_thoughts([p.prefixes[side] for side in (0, 1) for p in pairs], n, torch.Generator().manual_seed(0))
    dialogs = pair_dialogs(gpm, pairs, thoughts, n)
    with torch.no_grad():
        old = gpm.scorer(dialogs)
    answer_pos, answer_neg = split_sides(old.answer_logprobs, count, n)
    weight = misalignment_weight(answer_pos, answer_neg)
    scores_pos, scores_neg = group_scores(answer_pos), group_scores(answer_neg)
    adv_pos, adv_neg = dwrl_thought_advantages(weight, scores_pos, scores_neg)
    rows = micro_batches(count, n, pieces)
    config = DWRLConfig(clip_eps=0.2)
    # the engine averages the micro-batches' losses
    for score_batch, thought_batch in zip(scoring_batches(dialogs, rows, count, n, weight, scores_pos, scores_neg), thought_batches(dialogs, rows, n, torch.cat([adv_pos.reshape(-1), adv_neg.reshape(-1)]), old.thought_logprobs)):
        ((scoring_step_loss(gpm.scorer, score_batch)[0] + thought_step_loss(gpm.scorer, thought_batch, config)[0]) / len(rows)).backward()
    recipe = [p.grad.clone() for p in gpm.scorer.parameters()]
    gpm.scorer.zero_grad()
    output = gpm.scorer(dialogs)
    thought_pos, thought_neg = split_sides(output.thought_logprobs, count, n)
    new_pos, new_neg = split_sides(output.answer_logprobs, count, n)
    dwrl_surrogate_loss(new_pos, new_neg, thought_pos, thought_neg, weight, scores_pos, scores_neg)[0].backward()
    reference = [p.grad for p in gpm.scorer.parameters()]
    assert sum(float(g.abs().sum()) for g in reference) > 0
    for got, expected in zip(recipe, reference):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-4)
