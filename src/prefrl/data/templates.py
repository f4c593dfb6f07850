"""Render prompts and responses to text with the model's chat template (one place for it).

Conversational rows go through `tokenizer.apply_chat_template`; standard rows are plain text, as in
TRL: the prompt as written, then the response, then the end-of-sequence token.
"""

from __future__ import annotations

from typing import Any

from prefrl.data.records import Text


def _as_assistant(response: Text) -> list[dict[str, str]]:
    return response if isinstance(response, list) else [{"role": "assistant", "content": response}]


def render_prompt(tokenizer: Any, prompt: Text) -> str:
    """The text a policy continues: the chat up to the assistant's turn, or the raw prompt."""
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return prompt


def render_conversation(tokenizer: Any, prompt: Text, response: Text) -> str:
    """Prompt and response as one text, ending with the end-of-turn marker."""
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt + _as_assistant(response), tokenize=False)
    if isinstance(response, list):
        response = response[-1]["content"]
    return prompt + response + (tokenizer.eos_token or "")
