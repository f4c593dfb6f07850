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
