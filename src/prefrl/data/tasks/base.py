"""The shared machinery of the built-in preference tasks.

A task generates preference rows (a prompt, a chosen response and a rejected
response) from a deterministic generator, and scores any response with a gold
judge that reads the problem back out of the prompt text.  Subclasses supply
two things: :meth:`Task.sample`, which draws one :class:`Example` from a random
generator, and :meth:`Task.judge_text`, which scores a response to a prompt.

Determinism and disjoint splits
-------------------------------
Rows are drawn from a ``random.Random`` seeded with a stable integer derived
from ``(task name, split, seed)`` by SHA-256 (Python's ``hash()`` is salted per
process, so it cannot be used).  Every candidate prompt belongs to exactly one
split, decided by a stable hash of its text (one prompt in ``TEST_SHARE``
belongs to ``test``); candidates of the other split and repeated prompts are
skipped.  Hence the same ``(n, split, seed)`` always gives the same rows,
``train`` and ``test`` never share a prompt, and ``generate(n)`` is a prefix
of ``generate(m)`` for ``n < m``.

The out-of-distribution split
-----------------------------
``ood`` is drawn by a second generator, :meth:`Task.sample_ood`, that shares
no prompt template, phrasing or topic with ``train``/``test`` and adds kinds
(constraint kinds, problem forms) that ``train``/``test`` never contain; see
each task's ``OOD_KINDS``.  It measures whether a preference model learned the
rule or the generator's surface.  Its kinds are balanced: rows come in rounds
that hold every kind of ``ood_kinds`` once, in a seeded random order, so any
prefix of ``n`` rows has each kind ``n // k`` or ``n // k + 1`` times.  The
gold judge is the same rule, extended to read the new phrasings and kinds.
Adding ``ood`` changed no ``train`` or ``test`` row (their generator and seeds
are untouched; tests/data/tasks/test_pinned_rows.py pins them).
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SPLITS: tuple[str, ...] = ("train", "test", "ood")
#: The splits drawn by :meth:`Task.sample`; ``ood`` is drawn by :meth:`Task.sample_ood`.
IN_DISTRIBUTION_SPLITS: tuple[str, ...] = ("train", "test")
FORMATS: tuple[str, ...] = ("conversational", "standard")

#: One prompt in ``TEST_SHARE`` (by hash of its text) belongs to the test split.
TEST_SHARE = 5

#: How many candidates ``generate`` may draw per requested row before it gives
#: up; generous, because 4 in 5 candidates of ``test`` are skipped by design.
MAX_DRAWS_PER_ROW = 60


@dataclass(frozen=True)
class Example:
    """One preference example as plain text, before it is formatted as a row."""

    prompt: str
    chosen: str
    rejected: str
    reference: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def stable_int(*parts: object) -> int:
    """A 64-bit integer from the parts' text, equal across processes and runs."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def split_of(prompt: str) -> str:
    """The split a prompt text belongs to: ``"test"`` for one in ``TEST_SHARE``."""
    return "test" if stable_int("split", prompt) % TEST_SHARE == 0 else "train"


def message_content(message: Mapping[str, Any]) -> str:
    """The text of a chat message; content given as a list of parts is joined."""
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    # Multimodal-style content: [{"type": "text", "text": "..."}, ...]
    return "".join(
        str(part.get("text", "")) for part in content if isinstance(part, Mapping)
    )


def prompt_text(prompt: str | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """The instruction text of a prompt: a string, or the last user message."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Mapping):
        return message_content(prompt)
    user_messages = [m for m in prompt if m.get("role") == "user"]
    if not user_messages:
        raise ValueError("the prompt has no message with role 'user'")
    return message_content(user_messages[-1])


def response_text(
    response: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> str:
    """The text of a response: a string, the last assistant message, or the last message."""
    if isinstance(response, str):
        return response
    if isinstance(response, Mapping):
        return message_content(response)
    messages = list(response)
    if not messages:
        return ""
    assistant_messages = [m for m in messages if m.get("role") == "assistant"]
    return message_content((assistant_messages or messages)[-1])


def _check_arguments(n: int, split: str, fmt: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")


def _as_prompt(text: str, fmt: str) -> str | list[dict[str, str]]:
    return [{"role": "user", "content": text}] if fmt == "conversational" else text


def _as_completion(text: str, fmt: str) -> str | list[dict[str, str]]:
    return [{"role": "assistant", "content": text}] if fmt == "conversational" else text


class Task(ABC):
    """A preference task with a deterministic generator and a gold judge.

    Rows follow TRL's preference format.  ``reference`` is a correct response
    (formatted like ``chosen``), used as the anchor of pairwise PPO.
    """

    name: str
    #: The kinds of the ``ood`` split, each drawn equally often by :meth:`sample_ood`.
    ood_kinds: tuple[str, ...] = ()

    # -- to be supplied by subclasses ---------------------------------------

    @abstractmethod
    def sample(self, rng: random.Random) -> Example:
        """Draw one example; all randomness must come from ``rng``."""

    @abstractmethod
    def judge_text(self, prompt: str, response: str) -> float:
        """Score a response text to a prompt text: 1.0 if correct, else 0.0."""

    def sample_ood(self, rng: random.Random, kind: str) -> Example:
        """Draw one out-of-distribution example of ``kind`` (one of ``ood_kinds``)."""
        raise NotImplementedError(f"task {self.name!r} has no ood split")

    # -- public API -----------------------------------------------------------

    def generate(
        self,
        n: int,
        split: str = "train",
        seed: int = 0,
        fmt: str = "conversational",
    ) -> list[dict[str, Any]]:
        """``n`` preference rows with ``prompt``, ``chosen``, ``rejected``, ``reference`` and extras."""
        _check_arguments(n, split, fmt)
        return [
            {
                "prompt": _as_prompt(example.prompt, fmt),
                "chosen": _as_completion(example.chosen, fmt),
                "rejected": _as_completion(example.rejected, fmt),
                "reference": _as_completion(example.reference, fmt),
                **example.extra,
            }
            for example in self._examples(n, split, seed)
        ]

    def prompts(
        self,
        n: int,
        split: str = "train",
        seed: int = 0,
        fmt: str = "conversational",
    ) -> list[dict[str, Any]]:
        """Prompt-only rows (the prompts of :meth:`generate`, same order) with ``reference`` and extras."""
        _check_arguments(n, split, fmt)
        return [
            {
                "prompt": _as_prompt(example.prompt, fmt),
                "reference": _as_completion(example.reference, fmt),
                **example.extra,
            }
            for example in self._examples(n, split, seed)
        ]

    def judge(
        self,
        prompt: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        response: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    ) -> float:
        """The gold score of ``response`` to ``prompt``: 1.0 if correct/satisfied, else 0.0."""
        return self.judge_text(prompt_text(prompt), response_text(response))

    def judge_pair(
        self,
        prompt: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        a: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        b: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    ) -> float:
        """1.0 if ``a`` scores higher than ``b``, 0.0 if lower, 0.5 if equal."""
        score_a, score_b = self.judge(prompt, a), self.judge(prompt, b)
        if score_a > score_b:
            return 1.0
        if score_a < score_b:
            return 0.0
        return 0.5

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- internals --------------------------------------------------------------

    def _examples(self, n: int, split: str, seed: int) -> list[Example]:
        if split not in IN_DISTRIBUTION_SPLITS:
            return self._ood_examples(n, seed)
        rng = random.Random(stable_int(self.name, split, seed))
        examples: list[Example] = []
        seen_prompts: set[str] = set()
        for _ in range(MAX_DRAWS_PER_ROW * n + 1000):
            example = self.sample(rng)
            if split_of(example.prompt) != split or example.prompt in seen_prompts:
                continue
            seen_prompts.add(example.prompt)
            examples.append(example)
            if len(examples) == n:
                return examples
        raise ValueError(
            f"task {self.name!r} could only generate {len(examples)} distinct "
            f"{split} prompts of the {n} requested"
        )

    def _ood_examples(self, n: int, seed: int) -> list[Example]:
        """``ood`` rows: rounds of every ood kind once, in a seeded order; repeated prompts skipped."""
        if not self.ood_kinds:
            raise ValueError(f"task {self.name!r} has no ood split")
        rng = random.Random(stable_int(self.name, "ood", seed))
        order_rng = random.Random(stable_int(self.name, "ood", "kind order", seed))
        schedule: list[str] = []
        examples: list[Example] = []
        seen_prompts: set[str] = set()
        for _ in range(MAX_DRAWS_PER_ROW * n + 1000):
            while len(schedule) <= len(examples):
                schedule += order_rng.sample(self.ood_kinds, len(self.ood_kinds))
            example = self.sample_ood(rng, schedule[len(examples)])
            if example.prompt in seen_prompts:
                continue
            seen_prompts.add(example.prompt)
            examples.append(example)
            if len(examples) == n:
                return examples
        raise ValueError(
            f"task {self.name!r} could only generate {len(examples)} distinct ood prompts of the {n} requested"
        )
