"""One rule for plain-string and chat-message rows: the same content gives the same token ids.

Measured before the rule: the same pairs scored 0.555 as plain strings and 0.625 as chat
messages with one Bradley–Terry model, because a string row skipped the chat template.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prefrl.data.batching import encode, tokenize_pairs, tokenize_prompt_response
from prefrl.data.records import parse_preference_row
from prefrl.data.tasks import get_task
from prefrl.data.templates import render_conversation, render_prompt
from prefrl.models.tiny import build_tiny_tokenizer

SMOLLM2_TOKENIZER = Path.home() / ".cache" / "prefrl" / "models" / "smollm2-135m-instruct"


def _tiny_without_template():
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = None
    return tokenizer


def _smollm2():
    if not (SMOLLM2_TOKENIZER / "tokenizer_config.json").is_file():
        pytest.skip("the SmolLM2 tokenizer is not in the local cache (nothing is downloaded by tests)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(SMOLLM2_TOKENIZER)  # the tokenizer only, not the model


TOKENIZERS = {
    "tiny (ChatML template)": build_tiny_tokenizer,
    "tiny without a chat template": _tiny_without_template,
    "SmolLM2 (its own template, default system prompt)": _smollm2,
}


def _same_pairs(task: str, split: str, n: int = 6):
    standard = [parse_preference_row(row) for row in get_task(task).generate(n, split=split, seed=2, fmt="standard")]
    conversational = [parse_preference_row(row) for row in get_task(task).generate(n, split=split, seed=2)]
    return standard, conversational


@pytest.mark.parametrize("make_tokenizer", list(TOKENIZERS.values()), ids=list(TOKENIZERS))
def test_standard_and_conversational_rows_give_identical_ids(make_tokenizer) -> None:
    tokenizer = make_tokenizer()
    for task, split in (("constraints", "train"), ("arithmetic", "ood")):
        standard, conversational = _same_pairs(task, split)
        for flat, chat in zip(standard, conversational):
            assert isinstance(flat.prompt, str) and isinstance(chat.prompt, list)
            # the rendered texts
            assert render_prompt(tokenizer, flat.prompt) == render_prompt(tokenizer, chat.prompt)
            assert render_conversation(tokenizer, flat.prompt, flat.chosen) == render_conversation(tokenizer, chat.prompt, chat.chosen)
            # the ids a reward model scores (the whole sequence) ...
            assert encode(tokenizer, render_conversation(tokenizer, flat.prompt, flat.rejected)) == encode(
                tokenizer, render_conversation(tokenizer, chat.prompt, chat.rejected)
            )
            # ... and the prompt/response split that training and DPO use
            assert tokenize_prompt_response(tokenizer, flat.prompt, flat.chosen) == tokenize_prompt_response(tokenizer, chat.prompt, chat.chosen)
        flat_ids = tokenize_pairs(tokenizer, standard, 4096, "standard")
        chat_ids = tokenize_pairs(tokenizer, conversational, 4096, "conversational")
        assert flat_ids == chat_ids


def test_with_a_chat_template_a_string_is_one_user_turn_and_one_assistant_turn() -> None:
    tokenizer = build_tiny_tokenizer()
    assert render_prompt(tokenizer, "What is 2 + 2?") == "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"
    assert render_conversation(tokenizer, "What is 2 + 2?", "4") == (
        "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
    )


def test_without_a_chat_template_messages_are_plain_text() -> None:
    tokenizer = _tiny_without_template()
    prompt = [{"role": "user", "content": "What is 2 + 2?"}]
    assert render_prompt(tokenizer, prompt) == "What is 2 + 2?"
    assert render_conversation(tokenizer, prompt, [{"role": "assistant", "content": " 4"}]) == "What is 2 + 2? 4<|im_end|>"
    # a longer conversation: "Role: content" lines, then the assistant's turn
    dialog = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert render_prompt(tokenizer, dialog) == "System: Be brief.\nUser: Hi\nAssistant: "
    assert render_conversation(tokenizer, dialog, "Hello") == "System: Be brief.\nUser: Hi\nAssistant: Hello<|im_end|>"
