"""Packing prompt groups without padding: the layout by hand, and equivalence with each sequence alone."""

import pytest
import torch

from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.models.packing import pack_groups
from prefrl.models.policy import PolicyModel


def test_one_group_laid_out_by_hand():
    # Prompt [5, 6] (left-padded to 3), responses [7] and [8, 9] (right-padded to 2).
    packed = pack_groups(torch.tensor([[0, 5, 6]]), torch.tensor([[0, 1, 1]]), torch.tensor([[7, 0], [8, 9]]), torch.tensor([[1, 0], [1, 1]]))
    assert packed.input_ids.tolist() == [[5, 6, 7, 8, 9]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 2, 3]]  # both responses continue from the prompt
    allowed = packed.attention_mask[0, 0].int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],  # response 1 sees the prompt and itself
        [1, 1, 0, 1, 0],  # response 2 sees the prompt, not response 1
        [1, 1, 0, 1, 1],
    ]
    # Response tokens are predicted by the state before them; the first by the prompt's last (index 1).
    assert packed.predicting.tolist() == [[1, -1], [1, 3]]
    assert packed.layout.tolist() == [[-1, 0, 1, 2, -1], [-1, 0, 1, 3, 4]]


def test_groups_spread_over_rows_and_padding_sees_only_itself():
    prompts, prompt_mask = torch.tensor([[1, 2], [0, 3], [4, 5]]), torch.tensor([[1, 1], [0, 1], [1, 1]])
    responses = torch.tensor([[6, 6, 6], [7, 0, 0], [8, 8, 0], [9, 0, 0], [6, 7, 8], [0, 0, 0]])
    response_mask = (responses > 0).long()
    packed = pack_groups(prompts, prompt_mask, responses, response_mask, max_row_tokens=7)
    # Group lengths 6, 4, 5 (15 tokens) over ceil(15 / 7) = 3 rows: one group per row, width 6.
    assert packed.input_ids.shape == (3, 6)
    assert sorted(packed.input_ids[:, 0].tolist()) == [1, 3, 4]
    mask = packed.attention_mask[:, 0]
    pad_row = int((packed.input_ids[:, 0] == 3).nonzero())  # the 4-token group: two pad columns
    assert mask[pad_row, 4].int().tolist() == [0, 0, 0, 0, 1, 0] and mask[pad_row, 5].int().tolist() == [0, 0, 0, 0, 0, 1]
    assert (packed.predicting[5] == -1).all()  # an empty response predicts nothing


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_forward_equals_each_sequence_alone(attention):
    """Log-probs, entropies and hidden states of the packed forward, spread over several rows, against
    each prompt + response run alone without padding (an independent computation), with both
    attention kernels that accept the 4-D mask (sdpa reads it as boolean, eager adds it)."""
    model, tokenizer = load_causal_lm("tiny"), load_tokenizer("tiny")
    model.set_attn_implementation(attention)
    policy = PolicyModel(model, max_row_tokens=16)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompts = [encode(t) for t in ("What is 2+2?", "Hi", "Name three colours")]
    responses = [encode(t) for t in ("4", "four!", "hello", "", "red", "blue, green")]  # one empty response
    width = max(map(len, prompts))
    prompt_ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    prompt_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    longest = max(map(len, responses))
    response_ids = torch.tensor([r + [0] * (longest - len(r)) for r in responses])
    response_mask = torch.tensor([[1] * len(r) + [0] * (longest - len(r)) for r in responses])
    output = policy(prompt_ids, prompt_mask, width, temperature=0.8, return_entropy=True, return_hidden=True, response_ids=response_ids, response_mask=response_mask)
    assert output.hidden_states.shape == (6, width + longest, model.config.hidden_size)
    for row, response in enumerate(responses):
        prompt = prompts[row // 2]
        tokens = torch.tensor([prompt + response])
        with torch.no_grad():
            alone = model(tokens, output_hidden_states=True)
        n = len(response)
        logits = alone.logits[0, len(prompt) - 1 : len(prompt) - 1 + n] / 0.8
        expected = torch.log_softmax(logits, -1).gather(-1, tokens[0, len(prompt) :, None]).squeeze(-1)
        torch.testing.assert_close(output.logprobs[row, :n].detach(), expected, atol=1e-5, rtol=1e-4)
        entropy = -(torch.softmax(logits, -1) * torch.log_softmax(logits, -1)).sum(-1)
        torch.testing.assert_close(output.entropy[row, :n], entropy, atol=1e-5, rtol=1e-4)
        assert torch.all(output.logprobs[row, n:] == 0)
        hidden = output.hidden_states[row].detach()
        torch.testing.assert_close(hidden[width - len(prompt) : width + n], alone.hidden_states[-1][0], atol=1e-5, rtol=1e-4)
        assert torch.all(hidden[: width - len(prompt)] == 0) and torch.all(hidden[width + n :] == 0)


def test_kernels_that_ignore_the_mask_and_windows_it_cannot_apply_are_refused():
    from prefrl.models.packing import encode_packed

    model = load_causal_lm("tiny")
    packed = pack_groups(torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long), torch.tensor([[8, 9]]), torch.ones(1, 2, dtype=torch.long))
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="sdpa or eager"):
        encode_packed(model, packed, torch.device("cpu"))
    model.config._attn_implementation = "sdpa"
    model.config.sliding_window = 4
    with pytest.raises(ValueError, match="sliding window"):
        encode_packed(model, packed, torch.device("cpu"))
    model.config.sliding_window = 5  # 5 tokens fit: allowed
    assert encode_packed(model, packed, torch.device("cpu")).shape[:2] == (1, 5)
