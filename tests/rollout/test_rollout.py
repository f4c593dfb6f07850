import torch

from prefrl.data.records import PromptRecord
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.models.policy import PolicyModel
from prefrl.rollout import HFGenerationBackend, SamplingParams, collect_rollout


def test_rollout_shapes_and_logprobs_match_an_unpadded_forward():
    model, tokenizer = load_causal_lm("tiny"), load_tokenizer("tiny")
    policy = PolicyModel(model)
    backend = HFGenerationBackend(model, [tokenizer.eos_token_id], tokenizer.pad_token_id)
    prompts = [PromptRecord([{"role": "user", "content": "What is 2 + 2?"}]), PromptRecord("Say hi")]
    rollout = collect_rollout(
        policy, backend, tokenizer, prompts, SamplingParams(num_samples=3, max_new_tokens=6, temperature=0.7), torch.Generator().manual_seed(0),
        reference=policy, return_hidden=True, forward_chunk_size=4,
    )
    assert rollout.num_rows == 6 and rollout.group_size == 3
    assert rollout.hidden_states.shape == (6, rollout.input_ids.shape[1], model.config.hidden_size)
    torch.testing.assert_close(rollout.ref_logprobs, rollout.logprobs)  # reference = policy here
    # Independent computation: each row alone, no padding, full log-softmax at temperature 0.7.
    for row in range(rollout.num_rows):
        mask = rollout.attention_mask[row].bool()
        tokens = rollout.input_ids[row][mask]
        length = int(rollout.response_mask[row].sum())
        with torch.no_grad():
            logits = model(tokens.unsqueeze(0)).logits[0] / 0.7
        expected = torch.log_softmax(logits[-length - 1 : -1], dim=-1).gather(-1, tokens[-length:, None]).squeeze(-1)
        torch.testing.assert_close(rollout.logprobs[row, :length], expected, atol=1e-4, rtol=1e-4)
        assert torch.all(rollout.logprobs[row, length:] == 0)
    assert rollout.row_prompts[3] == "Say hi"
    sub = rollout.rows([1, 4])
    assert sub.num_rows == 2 and sub.responses == [rollout.responses[1], rollout.responses[4]]


def test_shared_prompt_log_probs_equal_full_sequences():
    from prefrl.data.batching import left_pad, pad_sequences

    model, tokenizer = load_causal_lm("tiny"), load_tokenizer("tiny")
    policy = PolicyModel(model)
    prompts = [tokenizer("What is 2+2?", add_special_tokens=False)["input_ids"], tokenizer("Hi", add_special_tokens=False)["input_ids"]]
    responses = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("4", "four!", "hello", "yo")]
    prompt_ids, prompt_mask = left_pad(prompts, tokenizer.pad_token_id)
    response_ids, response_mask = pad_sequences(responses, tokenizer.pad_token_id)
    shared = policy(prompt_ids, prompt_mask, prompt_ids.shape[1], response_ids=response_ids, response_mask=response_mask).logprobs * response_mask
    for row, response in enumerate(responses):
        tokens = torch.tensor([prompts[row // 2] + response])
        with torch.no_grad():
            expected = torch.log_softmax(model(tokens).logits[0, -len(response) - 1 : -1], -1).gather(-1, tokens[0, -len(response) :, None]).squeeze(-1)
        torch.testing.assert_close(shared[row, : len(response)].detach(), expected, atol=1e-5, rtol=1e-4)


def test_hidden_states_without_the_output_layer_equal_the_full_forward():
    """The R2M refresh path (each prompt encoded once, no logits) against the rollout's full pass,
    and the training forward's h against the same: equal wherever the attention mask is 1."""
    from prefrl.rollout.rollout import policy_hidden_in_chunks

    model, tokenizer = load_causal_lm("tiny"), load_tokenizer("tiny")
    policy = PolicyModel(model)
    backend = HFGenerationBackend(model, [tokenizer.eos_token_id], tokenizer.pad_token_id)
    prompts = [PromptRecord("What is 12 + 30?"), PromptRecord("Hi"), PromptRecord("Name a colour")]
    rollout = collect_rollout(
        policy, backend, tokenizer, prompts, SamplingParams(num_samples=2, max_new_tokens=7, temperature=1.0), torch.Generator().manual_seed(1),
        return_hidden=True, forward_chunk_size=6,
    )
    attended = rollout.attention_mask.bool()
    # Chunks of 4 rows hold two whole groups of 2; the last chunk holds one.
    refreshed = policy_hidden_in_chunks(policy, rollout.input_ids, rollout.attention_mask, rollout.prompt_length, rollout.group_size, chunk_size=4)
    assert refreshed.shape == rollout.hidden_states.shape
    torch.testing.assert_close(refreshed[attended], rollout.hidden_states[attended], atol=1e-5, rtol=1e-4)
    p = rollout.prompt_length
    output = policy(
        rollout.input_ids[::2, :p], rollout.attention_mask[::2, :p], p, return_hidden=True,
        response_ids=rollout.input_ids[:, p:], response_mask=rollout.attention_mask[:, p:],
    )
    torch.testing.assert_close(output.hidden_states.detach()[attended], rollout.hidden_states[attended], atol=1e-5, rtol=1e-4)


def test_a_bf16_refresh_gives_float32_states_close_to_the_exact_ones():
    from prefrl.rollout.rollout import policy_hidden_in_chunks

    model, tokenizer = load_causal_lm("tiny"), load_tokenizer("tiny")
    policy = PolicyModel(model)
    ids = torch.randint(3, tokenizer.vocab_size, (4, 12))
    mask = torch.ones_like(ids)
    exact = policy_hidden_in_chunks(policy, ids, mask, prompt_length=5, group_size=2, chunk_size=4)
    fast = policy_hidden_in_chunks(policy, ids, mask, prompt_length=5, group_size=2, chunk_size=4, bf16=True)
    assert fast.dtype == torch.float32 and not torch.equal(fast, exact)  # it did run in bf16
    torch.testing.assert_close(fast, exact, atol=0.1, rtol=0.05)  # bf16 keeps ~3 significant digits


def test_trim_and_rows_follow_each_fields_kind():
    """Row 0: prompt [pad, 5] response [7, pad, pad]; row 1: prompt [pad, 6] response [8, 9, pad].
    Trimming drops the all-padding first prompt column and last response column from sequences,
    the last column from per-token fields and the side input (which ends with the response), and
    nothing from per-row fields."""
    import torch

    from prefrl.data.records import PromptRecord
    from prefrl.rollout import Rollout, SideInput, trim

    input_ids = torch.tensor([[0, 5, 7, 0, 0], [0, 6, 8, 9, 0]])
    attention = torch.tensor([[0, 1, 1, 0, 0], [0, 1, 1, 1, 0]])
    response_mask = attention[:, 2:]
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    side = SideInput(torch.tensor([[1, 2, 7, 0, 0], [3, 4, 8, 9, 0]]), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]))
    rollout = Rollout(
        [PromptRecord("a"), PromptRecord("b")], 1, input_ids, attention, response_mask, 2, ["x", "yz"], per_token,
        advantages=per_token + 10, sequence_advantages=torch.tensor([0.5, -0.5]), row_index=torch.tensor([0, 1]), value_input=side,
    )
    trimmed = trim(rollout)
    assert trimmed.prompt_length == 1
    assert trimmed.input_ids.tolist() == [[5, 7, 0], [6, 8, 9]]
    assert trimmed.logprobs.tolist() == [[1.0, 2.0], [4.0, 5.0]]
    assert trimmed.advantages.tolist() == [[11.0, 12.0], [14.0, 15.0]]
    assert trimmed.value_input.input_ids.tolist() == [[1, 2, 7, 0], [3, 4, 8, 9]]
    assert trimmed.sequence_advantages.tolist() == [0.5, -0.5] and trimmed.ref_logprobs is None
    second = trimmed.rows([1])
    assert second.responses == ["yz"] and second.row_index.tolist() == [1]
    assert second.value_input.attention_mask.tolist() == [[1, 1, 1, 1]] and second.advantages.tolist() == [[14.0, 15.0]]
