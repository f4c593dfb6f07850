import torch

from prefrl.preference import GoldJudge, load_preference_model
from prefrl.preference.bradley_terry import BradleyTerryModel, distinct_pad_token


def test_bt_prob_is_sigmoid_of_score_difference():
    model = BradleyTerryModel.from_base("tiny")
    prompts, a, b = ["q1", "q2"], ["yes", "fine"], ["no", "bad answer"]
    expected = torch.sigmoid(model.score(prompts, a) - model.score(prompts, b))
    torch.testing.assert_close(model.prob(prompts, a, b), expected)


def test_bt_score_is_independent_of_batch_composition():
    model = BradleyTerryModel.from_base("tiny", batch_size=2)
    prompts, responses = ["a", "bb", "ccc"], ["x", "a much longer response", "y"]
    together = model.score(prompts, responses)
    alone = torch.cat([model.score([p], [r]) for p, r in zip(prompts, responses)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_distinct_pad_token_when_pad_is_eos():
    from prefrl.models.loading import load_tokenizer

    tokenizer = load_tokenizer("tiny")
    tokenizer.pad_token = tokenizer.eos_token
    distinct_pad_token(tokenizer)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_gold_judge_prob_is_one_zero_or_half():
    judge = GoldJudge("arithmetic")
    prompt = [{"role": "user", "content": "What is 17 + 25?"}]
    probs = judge.prob([prompt] * 3, ["The answer is 42.", "The answer is 32.", "The answer is 42."], ["The answer is 32.", "The answer is 42.", "42"])
    assert probs.tolist() == [1.0, 0.0, 0.5]
    assert isinstance(load_preference_model("gold:arithmetic"), GoldJudge)


def test_shared_prompt_forward_equals_full_sequences():
    from prefrl.data.batching import collate_pairs, tokenize_pairs
    from prefrl.data.loaders import load_preference_pairs

    model = BradleyTerryModel.from_base("tiny")
    pairs = load_preference_pairs("arithmetic", "train", 0, 5)
    batch = collate_pairs(tokenize_pairs(model.tokenizer, pairs, 1024, "test"), model.tokenizer.pad_token_id)
    shared = model.reward_model(batch.prompt_ids, batch.prompt_mask, batch.response_ids, batch.response_mask).view(-1, 2)
    # Independent computation: each full sequence scored on its own.
    full = torch.stack([model.score([p.prompt] * 2, [p.chosen, p.rejected]) for p in pairs])
    torch.testing.assert_close(shared.detach(), full, atol=1e-5, rtol=1e-4)
    # and the gradient flows into the prompt's part of the network through the cache
    shared.sum().backward()
    assert model.reward_model.backbone.embed_tokens.weight.grad[batch.prompt_ids[0, -1]].abs().sum() > 0


# ---- row formats: the same pairs score the same; the training format is recorded and checked ----


def _task_pairs(fmt, n=6, split="test"):
    from prefrl.data.records import parse_preference_row
    from prefrl.data.tasks import get_task

    return [parse_preference_row(row) for row in get_task("constraints").generate(n, split=split, seed=1, fmt=fmt)]


def test_bt_scores_plain_string_and_chat_message_rows_identically():
    """Measured before the one rendering rule: 0.555 as strings against 0.625 as messages."""
    model = BradleyTerryModel.from_base("tiny")
    standard, conversational = _task_pairs("standard"), _task_pairs("conversational")
    for pairs in (standard, conversational):
        assert model.encode([p.prompt for p in pairs], [p.chosen for p in pairs]) == model.encode(
            [p.prompt for p in standard], [p.chosen for p in standard]
        )
    flat = model.prob([p.prompt for p in standard], [p.chosen for p in standard], [p.rejected for p in standard])
    chat = model.prob([p.prompt for p in conversational], [p.chosen for p in conversational], [p.rejected for p in conversational])
    assert torch.equal(flat, chat)


def test_data_format_reads_pairs_rows_and_prompts():
    from prefrl.preference.base import data_format

    assert data_format(_task_pairs("standard")) == "standard"
    assert data_format(_task_pairs("conversational")) == "conversational"
    assert data_format([{"prompt": "x"}, {"prompt": [{"role": "user", "content": "x"}]}]) == "mixed"
    assert data_format(["x", "y"]) == "standard"
    assert data_format([]) is None


def test_trained_format_is_recorded_in_the_model_card_and_read_back(tmp_path):
    from prefrl.preference.base import read_model_card

    model = BradleyTerryModel.from_base("tiny")
    model.trained_format = "conversational"
    model.save(tmp_path / "model")
    assert read_model_card(tmp_path / "model")["trained_format"] == "conversational"
    loaded = load_preference_model(str(tmp_path))  # a run directory: <run>/model
    assert loaded.trained_format == "conversational"
    # a model saved without a recorded format loads with None (and never warns)
    model.trained_format = None
    model.save(tmp_path / "old")
    assert "trained_format" not in read_model_card(tmp_path / "old")
    assert load_preference_model(str(tmp_path / "old")).trained_format is None


def test_evaluating_on_the_other_format_warns_naming_both(recwarn):
    import warnings

    import pytest

    from prefrl.eval.preference import evaluate_preference
    from prefrl.preference.base import FormatMismatchWarning

    model = BradleyTerryModel.from_base("tiny")
    model.trained_format = "conversational"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FormatMismatchWarning)
        evaluate_preference(model, _task_pairs("conversational"))  # same format: silent
    with pytest.warns(FormatMismatchWarning) as caught:
        evaluate_preference(model, _task_pairs("standard"))
    message = str(caught[0].message)
    assert "trained on conversational rows" in message and "scoring standard rows" in message
    untrained = BradleyTerryModel.from_base("tiny")  # no recorded format: nothing to compare with
    with warnings.catch_warnings():
        warnings.simplefilter("error", FormatMismatchWarning)
        evaluate_preference(untrained, _task_pairs("standard"))
