"""End-to-end Bradley–Terry recipe on the tiny model: CLI, artefacts, resume, NaN guard, checkpoint format."""

import json

import pytest
import torch

from prefrl.algorithms.reward import RewardConfig, train_reward
from prefrl.cli import main
from prefrl.engine import checkpoint as ckpt
from prefrl.engine.metrics import read_metrics
from prefrl.errors import NonFiniteLossError
from prefrl.preference import load_preference_model
from tests.conftest import write_jsonl

TINY = dict(model="tiny", data="arithmetic", num_train=48, num_eval=16, batch_size=4, lr=1e-3, progress=False)


def losses(run_dir):
    return [m["train/loss"] for m in read_metrics(run_dir) if "train/loss" in m]


def test_cli_train_then_eval(tmp_path, capsys):
    run = tmp_path / "D"
    assert main(["train", "reward", "model=tiny", "data=arithmetic", "max_steps=3", f"output_dir={run}", "num_train=24", "num_eval=8", "batch_size=4", "progress=false"]) == 0
    assert len(losses(run)) == 3
    assert (run / "config.yaml").is_file() and "max_steps: 3" in (run / "config.yaml").read_text()
    assert (run / "model" / "config.json").is_file() and (run / "model" / "model.safetensors").is_file()
    assert ckpt.latest_checkpoint(run) is not None
    capsys.readouterr()
    assert main(["eval", "preference", "--model", str(run), "--data", "arithmetic", "--num", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.0 <= report["accuracy"] <= 1.0 and report["num_pairs"] == 8


@pytest.mark.slow
def test_resumed_run_continues_the_same_loss_sequence(tmp_path, monkeypatch):
    config = dict(TINY, max_steps=6, save_steps=2)
    full = train_reward(RewardConfig(output_dir=str(tmp_path / "full"), **config))
    reference = losses(tmp_path / "full")
    assert len(reference) == 6 and full["steps"] == 6

    # Interrupt a second run during step 5: checkpoints at steps 2 and 4 exist, step 5 never finishes.
    from prefrl.engine.engine import Engine

    original_step = Engine.optimizer_step

    def interrupted(self, micro_batches, loss_fn):
        if self.step == 4:
            raise KeyboardInterrupt
        return original_step(self, micro_batches, loss_fn)

    monkeypatch.setattr(Engine, "optimizer_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_reward(RewardConfig(output_dir=str(tmp_path / "cut"), **config))
    monkeypatch.setattr(Engine, "optimizer_step", original_step)
    assert ckpt.latest_checkpoint(tmp_path / "cut").name == ckpt.step_name(4)

    train_reward(RewardConfig(output_dir=str(tmp_path / "cut"), resume=True, **config))
    assert losses(tmp_path / "cut") == reference  # exactly, not approximately
    full_weights = load_preference_model(str(tmp_path / "full")).reward_model.state_dict()
    resumed_weights = load_preference_model(str(tmp_path / "cut")).reward_model.state_dict()
    assert all(torch.equal(full_weights[k], resumed_weights[k]) for k in full_weights)


def test_nan_loss_stops_before_the_update_and_keeps_checkpoints(tmp_path, monkeypatch):
    import prefrl.algorithms.reward as recipe

    real_loss = recipe.bradley_terry_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss, stats = real_loss(*args, **kwargs)
        return (loss * float("nan"), stats) if calls["n"] == 3 else (loss, stats)

    monkeypatch.setattr(recipe, "bradley_terry_loss", poisoned)
    run = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss .* step 3") as error:
        train_reward(RewardConfig(output_dir=str(run), max_steps=5, save_steps=2, **{k: v for k, v in TINY.items()}))
    assert "intact" in str(error.value)
    saved = ckpt.latest_checkpoint(run)
    assert saved.name == ckpt.step_name(2) and ckpt.read_trainer_state(saved)["step"] == 2
    from safetensors.torch import load_file

    weights = load_file(str(saved / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_saved_model_loads_as_a_plain_sequence_classifier_with_the_same_scores(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = tmp_path / "bt"
    train_reward(RewardConfig(output_dir=str(run), max_steps=2, **TINY))
    ours = load_preference_model(str(run))
    prompts = [[{"role": "user", "content": "What is 2 + 3?"}]] * 2
    responses = ["The answer is 5.", "The answer is 6, I think."]
    expected = ours.score(prompts, responses)

    classifier = AutoModelForSequenceClassification.from_pretrained(str(run / "model"))
    tokenizer = AutoTokenizer.from_pretrained(str(run / "model"))
    texts = [tokenizer.apply_chat_template(p + [{"role": "assistant", "content": r}], tokenize=False) for p, r in zip(prompts, responses)]
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = classifier(**batch).logits.squeeze(-1)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(expected[0], expected[1])


def test_margin_column_changes_the_loss(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad", "margin": 5.0} for i in range(8)]
    data = write_jsonl(tmp_path / "m.jsonl", rows)
    common = dict(model="tiny", data=str(data), max_steps=1, batch_size=4, num_eval=0, progress=False)
    train_reward(RewardConfig(output_dir=str(tmp_path / "with"), **common))
    train_reward(RewardConfig(output_dir=str(tmp_path / "without"), use_margin=False, **common))
    assert losses(tmp_path / "with")[0] > losses(tmp_path / "without")[0] + 1.0  # ≈ 5 larger


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["learnig_rate=1"], "unknown config key 'learnig_rate'"),
        (["model=./no/such/model"], "'./no/such/model' does not exist"),
    ],
)
def test_cli_errors_exit_nonzero_and_name_the_problem(tmp_path, capsys, args, fragment):
    code = main(["train", "reward", f"output_dir={tmp_path / 'r'}", "max_steps=1", "progress=false", "num_train=8", *args])
    assert code != 0 and fragment in capsys.readouterr().err


def test_cli_malformed_jsonl_row(tmp_path, capsys):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "a", "rejected": None}])
    code = main(["train", "reward", "model=tiny", f"data={data}", f"output_dir={tmp_path / 'r'}", "max_steps=1", "progress=false"])
    error = capsys.readouterr().err
    assert code != 0 and "bad.jsonl: row 2: field 'rejected'" in error
    assert not (tmp_path / "r").exists()  # failed at start-up, before writing anything


def test_tensorboard_tracker_through_accelerate(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "tb"
    train_reward(RewardConfig(output_dir=str(run), max_steps=2, report_to="tensorboard", **{**TINY, "num_eval": 0}))
    assert list(run.rglob("events.out.tfevents*")), "no TensorBoard event file"
