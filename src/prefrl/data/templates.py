"""Render prompts and responses to text with the model's chat template (one place for it).

One rule for plain-string ("standard") and chat-message ("conversational") rows
---------------------------------------------------------------------------------
A row is rendered from its *content*, not from its format, so the same pair gives the same token ids
whichever way it is written:

* A plain-string prompt is one user message, ``[{"role": "user", "content": prompt}]``; a plain-string
  response is one assistant message.  With a tokenizer that has a chat template (SmolLM2, the built-in
  ``tiny``) both formats are rendered by ``tokenizer.apply_chat_template``: the prompt with the
  generation prompt (the assistant turn's header), the prompt and response as one conversation that
  ends with the template's end-of-turn marker.
* With a tokenizer that has no chat template both formats are plain text: a single user message is its
  content (exactly the plain string), a longer conversation is "Role: content" lines followed by
  "Assistant: "; a response is its text (the last message's content) followed by the EOS token.

So ``{"prompt": "Hi", "chosen": "Hello", ...}`` and ``{"prompt": [{"role": "user", "content": "Hi"}],
"chosen": [{"role": "assistant", "content": "Hello"}], ...}`` are tokenised identically everywhere
prefrl renders a row (reward models, DPO-family losses, rollouts and evaluation).  Before this rule a
plain string skipped the chat template, and the same pairs scored differently as strings and as
messages (0.555 vs 0.625 with one Bradley–Terry model).  A string that carries its own dialogue
markup (HH-RLHF's "\n\nHuman: … \n\nAssistant:") is still one user message: its markup is kept as
text inside the chat template.  A preference model records the format it was trained on, and
evaluating it on the other format warns (see prefrl.preference.base).
"""

from __future__ import annotations

from typing import Any

from prefrl.data.records import Message, Text


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer renders chats with a template of its own."""
    return bool(getattr(tokenizer, "chat_template", None))


def as_user_messages(prompt: Text) -> list[Message]:
    """A prompt as chat messages: a plain string is one user message."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _as_assistant(response: Text) -> list[Message]:
    return list(response) if isinstance(response, list) else [{"role": "assistant", "content": response}]


def _plain_prompt(prompt: Text) -> str:
    """A prompt as plain text (tokenizers without a chat template): a string as is, a single user
    message as its content, a longer conversation as "Role: content" lines and "Assistant: "."""
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        return prompt[0]["content"]
    return flatten_conversation(prompt) + "\nAssistant: "


def render_prompt(tokenizer: Any, prompt: Text) -> str:
    """The text a policy continues: the chat up to the assistant's turn (plain text without a template)."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(as_user_messages(prompt), tokenize=False, add_generation_prompt=True)
    return _plain_prompt(prompt)


def render_conversation(tokenizer: Any, prompt: Text, response: Text) -> str:
    """Prompt and response as one text, ending with the end-of-turn marker (EOS without a template)."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(as_user_messages(prompt) + _as_assistant(response), tokenize=False)
    return _plain_prompt(prompt) + response_text(response) + (tokenizer.eos_token or "")


def flatten_conversation(text: Text) -> str:
    """A prompt as plain text for a judge's prompt: a string as is; a single user turn as its
    content; a longer conversation as "Role: content" lines."""
    if isinstance(text, str):
        return text
    if len(text) == 1:
        return text[0]["content"]
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in text)


def response_text(response: Text) -> str:
    """The assistant's words: a string as is, or the content of the last message."""
    return response if isinstance(response, str) else response[-1]["content"]


# ---- judge prompts (one place; every generative preference model renders through these) ----
PAIRWISE_JUDGE_PROMPT = (
    "Which response answers the request better?\n\n"
    "[Request]\n{prompt}\n\n[Response A]\n{response_a}\n\n[Response B]\n{response_b}\n\n"
    "Reply with a single letter: A or B."
)
PAIRWISE_VERDICTS = ("A", "B")


def render_pairwise_judge(tokenizer: Any, prompt: Text, response_a: Text, response_b: Text) -> str:
    """The pairwise judge's input: the chat up to the assistant turn whose first token is the verdict."""
    question = PAIRWISE_JUDGE_PROMPT.format(prompt=flatten_conversation(prompt), response_a=response_text(response_a), response_b=response_text(response_b))
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
    return question + "\nAnswer:"


ANCHOR_HEADER = "\n\n[Reference response]\n"


def with_anchor(prompt: Text, anchor: Text) -> Text:
    """The prompt with an anchor response appended to its last user turn (pairwise PPO's value input)."""
    addition = ANCHOR_HEADER + response_text(anchor)
    if isinstance(prompt, str):
        return prompt + addition
    messages = [dict(m) for m in prompt]
    for message in reversed(messages):
        if message["role"] == "user":
            message["content"] += addition
            break
    return messages


# ---- the dialog generative preference model (DWRL, paper 000) ----
DIALOG_CRITIQUE_PROMPT = (
    "[Request]\n{prompt}\n\n[Response]\n{response}\n\n"
    "Check the response: is it correct, and does it do what the request asks? Give a short critique."
)
DIALOG_VERDICT_PROMPT = "Is this response good? Answer Yes or No."
DIALOG_ANSWER = "Yes"
_THOUGHT_MARK = "\u241fTHOUGHT\u241f"


def render_dialog(tokenizer: Any, prompt: Text, response: Text) -> tuple[str, str]:
    """(prefix, suffix) of the two-turn judging dialog around the thought o:

        prefix = turn 1 (critique request for x, y) up to the assistant's turn, where o is generated
        suffix = end of the assistant's turn, turn 2 ("Is this response good? …"), and the assistant
                 turn whose first token is the answer (its "Yes" probability is the score)
    Rendering one conversation with a marker for o and splitting there keeps the chat template exact.
    """
    critique = DIALOG_CRITIQUE_PROMPT.format(prompt=flatten_conversation(prompt), response=response_text(response))
    if not getattr(tokenizer, "chat_template", None):
        return f"{critique}\nCritique:", f"\n{DIALOG_VERDICT_PROMPT}\nAnswer:"
    messages = [
        {"role": "user", "content": critique},
        {"role": "assistant", "content": _THOUGHT_MARK},
        {"role": "user", "content": DIALOG_VERDICT_PROMPT},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix, suffix = text.split(_THOUGHT_MARK)
    return prefix, suffix


# ---- the thinking pairwise judge trained with GRPO ("GRPO (pair)", the DWRL paper's baseline) ----
THINKING_JUDGE_PROMPT = (
    "Which response answers the request better?\n\n"
    "[Request]\n{prompt}\n\n[Response A]\n{response_a}\n\n[Response B]\n{response_b}\n\n"
    "Think it through briefly, then finish with a line 'Verdict: A' or 'Verdict: B'."
)
VERDICT_MARK = "Verdict:"


def thinking_judge_messages(prompt: Text, response_a: Text, response_b: Text) -> list[dict[str, str]]:
    content = THINKING_JUDGE_PROMPT.format(prompt=flatten_conversation(prompt), response_a=response_text(response_a), response_b=response_text(response_b))
    return [{"role": "user", "content": content}]
