"""Records for preference pairs and prompt-only rows, read from TRL's dataset formats.

Accepted row shapes (TRL's names):
- standard, explicit prompt:       {"prompt": str, "chosen": str, "rejected": str}
- standard, implicit prompt:       {"chosen": str, "rejected": str}  (the prompt is the shared
  prefix; HH-RLHF's "\\n\\nHuman: … \\n\\nAssistant:" dialogues are split at the last "Assistant:")
- conversational, explicit prompt: {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
- conversational, implicit prompt: {"chosen": [messages], "rejected": [messages]} (shared leading turns)
- prompt-only:                     {"prompt": str | [messages]}
Optional columns: `margin` (a number, the BT margin), `reference` (a response used as the
pairwise-PPO anchor). Any other column is carried along in `extra`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

Message = dict[str, str]
Text = Union[str, list[Message]]  # a plain string or a list of chat messages

ROLES = ("system", "user", "assistant", "tool")
HH_ASSISTANT_TAG = "\n\nAssistant:"


class RowError(ValueError):
    """A problem with one field of one row; the loader adds the file and row number."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(f"field {field_name!r}: {problem}")
        self.field_name = field_name


@dataclass
class PreferencePair:
    prompt: Text
    chosen: Text  # the response alone (no prompt), same kind as `prompt`
    rejected: Text
    margin: float | None = None
    reference: Text | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_conversational(self) -> bool:
        return isinstance(self.prompt, list)


@dataclass
class PromptRecord:
    prompt: Text
    reference: Text | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_conversational(self) -> bool:
        return isinstance(self.prompt, list)


def _check_messages(field_name: str, value: list, allow_empty: bool = False) -> list[Message]:
    if not value and not allow_empty:
        raise RowError(field_name, "is an empty list of messages")
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise RowError(field_name, f"message {index} is {type(message).__name__}, expected an object with 'role' and 'content'")
        for key in ("role", "content"):
            if key not in message:
                raise RowError(field_name, f"message {index} has no {key!r}")
        if message["role"] not in ROLES:
            raise RowError(field_name, f"message {index} has role {message['role']!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(message["content"], str):
            raise RowError(field_name, f"message {index} content is {type(message['content']).__name__}, expected a string")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _check_text(field_name: str, value: Any) -> Text:
    if isinstance(value, str):
        if not value.strip():
            raise RowError(field_name, "is empty")
        return value
    if isinstance(value, list):
        return _check_messages(field_name, value)
    if value is None:
        raise RowError(field_name, "is missing (null)")
    raise RowError(field_name, f"is {type(value).__name__}, expected a string or a list of chat messages")


def _split_implicit_text(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Shared prefix of two strings as the prompt; cut after HH-RLHF's last shared Assistant tag."""
    length = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        length += 1
    prefix = chosen[:length]
    tag = prefix.rfind(HH_ASSISTANT_TAG)
    if tag >= 0:
        length = tag + len(HH_ASSISTANT_TAG)
    else:  # do not cut a word in half: back off to the last whitespace of the shared part
        while length > 0 and not chosen[length - 1].isspace() and length < len(chosen) and length < len(rejected):
            length -= 1
    if length == 0:
        raise RowError("chosen", "no prompt column and chosen/rejected share no prefix to use as the prompt")
    return chosen[:length], chosen[length:], rejected[length:]


def _split_implicit_messages(chosen: list[Message], rejected: list[Message]) -> tuple[list, list, list]:
    shared = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        shared += 1
    if shared == 0:
        raise RowError("chosen", "no prompt column and chosen/rejected share no leading messages to use as the prompt")
    if shared == len(chosen) or shared == len(rejected):
        raise RowError("chosen", "chosen and rejected conversations are identical or one contains the other")
    return chosen[:shared], chosen[shared:], rejected[shared:]


def _optional_margin(row: dict) -> float | None:
    if row.get("margin") is None:
        return None
    value = row["margin"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RowError("margin", f"is {type(value).__name__}, expected a number")
    try:
        number = float(value)
    except OverflowError:
        raise RowError("margin", "is too large, expected a finite number") from None
    if not math.isfinite(number):
        raise RowError("margin", f"is {value}, expected a finite number")
    return number


def _check_same_kind(prompt: Text, **responses: Text) -> None:
    for name, response in responses.items():
        if isinstance(prompt, list) != isinstance(response, list):
            raise RowError(name, "mixes formats: prompt and responses must all be strings or all be message lists")


PAIR_KEYS = ("prompt", "chosen", "rejected", "margin", "reference")
PROMPT_KEYS = ("prompt", "reference")


def parse_preference_row(row: Any) -> PreferencePair:
    """Validate one row and normalise it to an explicit-prompt pair. Raises RowError."""
    if not isinstance(row, dict):
        raise RowError("<row>", f"is {type(row).__name__}, expected an object with chosen/rejected")
    for key in ("chosen", "rejected"):
        if key not in row:
            raise RowError(key, "is missing (a preference row needs chosen and rejected, and optionally prompt)")
    prompt = _check_text("prompt", row["prompt"]) if row.get("prompt") is not None else None
    chosen = _check_text("chosen", row["chosen"])
    rejected = _check_text("rejected", row["rejected"])
    if prompt is not None:
        pass
    elif isinstance(chosen, str) and isinstance(rejected, str):
        prompt, chosen, rejected = _split_implicit_text(chosen, rejected)
    elif isinstance(chosen, list) and isinstance(rejected, list):
        prompt, chosen, rejected = _split_implicit_messages(chosen, rejected)
    else:
        raise RowError("rejected", "chosen is a string and rejected a message list (or the other way round)")
    _check_same_kind(prompt, chosen=chosen, rejected=rejected)
    reference = _check_text("reference", row["reference"]) if row.get("reference") is not None else None
    if reference is not None:
        _check_same_kind(prompt, reference=reference)
    extra = {k: v for k, v in row.items() if k not in PAIR_KEYS}
    return PreferencePair(prompt, chosen, rejected, _optional_margin(row), reference, extra)


def parse_prompt_row(row: Any) -> PromptRecord:
    """Validate a prompt-only row (preference rows are accepted too: their prompt is used)."""
    if not isinstance(row, dict):
        raise RowError("<row>", f"is {type(row).__name__}, expected an object with a prompt")
    if row.get("prompt") is None and "chosen" in row:
        pair = parse_preference_row(row)
        return PromptRecord(pair.prompt, pair.reference, pair.extra)
    if "prompt" not in row:
        raise RowError("prompt", "is missing")
    prompt = _check_text("prompt", row["prompt"])
    reference = _check_text("reference", row["reference"]) if row.get("reference") is not None else None
    if reference is not None:
        _check_same_kind(prompt, reference=reference)
    extra = {k: v for k, v in row.items() if k not in PROMPT_KEYS}
    return PromptRecord(prompt, reference, extra)


def last_content(text: Text, role: str | None = None) -> str:
    """The content of the last message (of `role`, if given), or the string itself."""
    if isinstance(text, str):
        return text
    for message in reversed(text):
        if role is None or message["role"] == role:
            return message["content"]
    return text[-1]["content"] if text else ""
