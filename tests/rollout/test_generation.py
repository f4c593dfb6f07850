import pytest
import torch

from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.rollout.generation import HFGenerationBackend, SamplingParams, sample_next_token

PROMPTS = ["What is 1+1?", "Hi", "Write about the sea in at most 5 words."]


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = load_causal_lm("tiny"), load_tokenizer("tiny")
    # A random tiny model rarely says EOS; make it likely so early stopping is exercised.
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] *= 0  # tied: also the EOS embedding
        model.model.norm.weight.mul_(3.0)
    return model, tokenizer


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_greedy_matches_hugging_face_generate_per_prompt(tiny):
    model, tokenizer = tiny
    backend = HFGenerationBackend(model, [tokenizer.eos_token_id], tokenizer.pad_token_id)
    prompt_ids = [ids(tokenizer, p) for p in PROMPTS]
    ours = backend.generate(prompt_ids, SamplingParams(max_new_tokens=12, greedy=True), torch.Generator().manual_seed(0))
    for prompt, response in zip(prompt_ids, ours):
        reference = model.generate(
            torch.tensor([prompt]), max_new_tokens=12, do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
        )[0, len(prompt) :].tolist()
        if tokenizer.eos_token_id in reference:  # HF pads after EOS; ours stops
            reference = reference[: reference.index(tokenizer.eos_token_id) + 1]
        assert response == reference


def test_k_samples_per_prompt_are_group_contiguous_and_reproducible(tiny):
    model, tokenizer = tiny
    backend = HFGenerationBackend(model, [tokenizer.eos_token_id], tokenizer.pad_token_id)
    prompt_ids = [ids(tokenizer, p) for p in PROMPTS]
    params = SamplingParams(num_samples=4, max_new_tokens=10, temperature=1.0)
    first = backend.generate(prompt_ids, params, torch.Generator().manual_seed(1))
    second = backend.generate(prompt_ids, params, torch.Generator().manual_seed(1))
    assert first == second and len(first) == 12
    assert all(1 <= len(r) <= 10 for r in first)
    assert all(r[-1] == tokenizer.eos_token_id or len(r) == 10 for r in first)
    assert all(tokenizer.eos_token_id not in r[:-1] for r in first)  # stops at the first EOS


def test_top_p_keeps_the_smallest_prefix_reaching_the_mass():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    generator = torch.Generator().manual_seed(0)
    draws = {int(sample_next_token(logits, SamplingParams(top_p=0.7), generator)) for _ in range(300)}
    assert draws == {0, 1}  # 0.5 < 0.7 ≤ 0.5 + 0.3
    draws = {int(sample_next_token(logits, SamplingParams(top_p=0.1), generator)) for _ in range(50)}
    assert draws == {0}
    frequencies = torch.bincount(torch.stack([sample_next_token(logits, SamplingParams(), generator) for _ in range(4000)]).flatten(), minlength=4) / 4000
    torch.testing.assert_close(frequencies, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.03, rtol=0)


def test_generation_and_rollout_raise_no_future_warning(tiny):
    """Sampling uses transformers' Cache API (a DynamicCache passed by the keyword the installed
    release expects), not the `past_key_values` keyword that transformers 5.2x deprecates."""
    import warnings

    from prefrl.data.records import PromptRecord
    from prefrl.models.policy import PolicyModel
    from prefrl.rollout import collect_rollout

    model, tokenizer = tiny
    backend = HFGenerationBackend(model, [tokenizer.eos_token_id], tokenizer.pad_token_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        backend.generate([ids(tokenizer, p) for p in PROMPTS], SamplingParams(num_samples=2, max_new_tokens=6), torch.Generator().manual_seed(0))
        rollout = collect_rollout(
            PolicyModel(model), backend, tokenizer, [PromptRecord(prompt=p) for p in PROMPTS], SamplingParams(num_samples=2, max_new_tokens=6),
            torch.Generator().manual_seed(0),
        )
    assert rollout.num_rows == 6


def test_cache_keyword_sees_through_peft(tiny):
    peft = pytest.importorskip("peft")
    from prefrl.models.policy import cache_keyword

    model, _ = tiny
    wrapped = peft.get_peft_model(load_causal_lm("tiny"), peft.LoraConfig(r=2, target_modules="all-linear", task_type="CAUSAL_LM"))
    assert cache_keyword(wrapped) == cache_keyword(model) == cache_keyword(model.get_decoder())


def test_reward_model_shared_prompt_forward_uses_the_cache_api():
    """The reward model's shared-prompt forward (each prompt's KV cache repeated for its responses)
    gives the full-sequence rewards and raises no FutureWarning about `past_key_values`."""
    import warnings

    from prefrl.models.heads import ScalarRewardModel
    from prefrl.models.loading import load_sequence_classifier

    model = ScalarRewardModel(load_sequence_classifier("tiny", pad_token_id=3)).eval()
    prompt, responses = [10, 11, 12], [[20, 21], [30, 31, 32, 33]]
    prompt_ids, prompt_mask = torch.tensor([prompt]), torch.ones(1, 3, dtype=torch.long)
    response_ids = torch.tensor([[20, 21, 3, 3], [30, 31, 32, 33]])
    response_mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error", FutureWarning)
        shared = model(prompt_ids, prompt_mask, response_ids, response_mask)
        full = torch.cat([model(torch.tensor([prompt + r]), torch.ones(1, 3 + len(r), dtype=torch.long)) for r in responses])
    torch.testing.assert_close(shared, full, rtol=1e-4, atol=1e-5)
