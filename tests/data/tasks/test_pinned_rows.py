"""train/test rows are pinned: the same seed must keep giving byte-identical rows.

Results already recorded (reward models, benchmark tables, the demo) were computed on these rows,
so adding splits, kinds or phrasings to a task must not change a single train or test row.  The
hashes below were taken before the ``ood`` split was added.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from prefrl.data.tasks import get_task


def _digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


# (task, split, seed) -> (sha256 of generate(200, fmt="standard"), sha256 of prompts(200))
PINNED = {
    ("arithmetic", "train", 0): (
        "046eb8bdc4363b73eeb21a4d9f6eb4e252e1f9eae1e6c1df258560a2184791cd",
        "b6b105e715adb62958550591e8ee53d14f2451b4762a413817c7ef2514fb0521",
    ),
    ("arithmetic", "train", 3): (
        "b3a0eb80a79066ce5d9c96d993dbfe2d9d327ea57e6f8e0e0f2fcd0b8705c77c",
        "f847c2d332ed84615e8333a48a1a75438167af3839014e008b44a4305b67dd87",
    ),
    ("arithmetic", "test", 0): (
        "a99b689d7d58f0615eb92ef8579da369a2d39551dbed3cb07a3fe5c47797d143",
        "fd669aa95b5d459c84eb6f2d5bc7811bd6e35966cd668f5318318fe40cb882f6",
    ),
    ("arithmetic", "test", 3): (
        "72d72aa55d9af5ead348c20bf699c357b2f654893c936c94152ab79731920e1f",
        "21fd46b04a1028fbc4ec4b54189ed59ae59b0c778296585a85f3755cf05a7cdf",
    ),
    ("constraints", "train", 0): (
        "3242ee047e3877f58afada549f70d7421f70e77fffa81d3ef7512e87c6968e40",
        "996344fa1e8962ffce99f7ec84cde595c4ebbc154c3389e32f81b8f2306cbe69",
    ),
    ("constraints", "train", 3): (
        "42701ef0506661cea3cf30a4b8507984a9e08aa67a50eea1e38e4b90273daa1b",
        "817852628390e1ddb0ae9c7e34be61b3151e95606adea841d7f95c5092812dad",
    ),
    ("constraints", "test", 0): (
        "6cbb9666809b6ba94a505c78191f35ecae9e92bcdd63a2d353d862557caee07c",
        "b232e14af917fb56076a1c6f54beb9e2d79f7a5941c88c66e8041bf0535900cc",
    ),
    ("constraints", "test", 3): (
        "b7d023fe2e98c955f193839e70599aab0dd21bfeb15ce4e90c21a621623f0d8c",
        "416e6d2cd9c854f71ceab7c294f7fa87b791293c33262b32e0181f645081232f",
    ),
}

# sha256 of generate(100, split="train", seed=0) in the default (conversational) format
PINNED_CONVERSATIONAL = {
    "arithmetic": "18698d9b9e84668afa4edebbcb66c15dfc3982ca4e956c1680b2fb334e3c51bd",
    "constraints": "315dfa5b2a42f51953e5c780447467f3943372da7fe31ec0da8fce61160fee58",
}


@pytest.mark.parametrize(("name", "split", "seed"), sorted(PINNED))
def test_train_and_test_rows_are_unchanged(name: str, split: str, seed: int) -> None:
    task = get_task(name)
    rows_digest, prompts_digest = PINNED[(name, split, seed)]
    assert _digest(task.generate(200, split=split, seed=seed, fmt="standard")) == rows_digest
    assert _digest(task.prompts(200, split=split, seed=seed)) == prompts_digest


@pytest.mark.parametrize("name", sorted(PINNED_CONVERSATIONAL))
def test_conversational_rows_are_unchanged(name: str) -> None:
    assert _digest(get_task(name).generate(100, split="train", seed=0)) == PINNED_CONVERSATIONAL[name]


def test_a_few_rows_read_as_before() -> None:
    """The same pin in readable form, so a failure shows what moved."""
    arithmetic = get_task("arithmetic")
    assert arithmetic.generate(2, split="train", seed=0, fmt="standard")[0] == {
        "prompt": "What is 39 + 6 * 10?",
        "chosen": "6 * 10 = 60. 39 + 60 = 99. The answer is 99.",
        "rejected": "39 + 6 = 45. 45 * 10 = 450. The answer is 450.",
        "reference": "6 * 10 = 60. 39 + 60 = 99. The answer is 99.",
        "answer": "99",
        "kind": "two_step",
        "style": "worked",
        "error": "wrong_order",
    }
    assert arithmetic.generate(2, split="test", seed=0, fmt="standard")[1]["prompt"] == (
        "A library has 12 shelves with 35 books on each shelf. Readers borrow 68 of the books. "
        "How many books are left on the shelves?"
    )
    constraints = get_task("constraints")
    assert constraints.generate(2, split="train", seed=0, fmt="standard")[0] == {
        "prompt": "Share a few thoughts about the night sky. Do not use the word 'satellites'.",
        "chosen": "City lights make it harder to see faint stars. Planets shine steadily, while stars seem to twinkle.",
        "rejected": "Meteor showers happen when our planet passes through comet dust. "
        "Satellites look like slow, silent points of light.",
        "reference": "City lights make it harder to see faint stars. Planets shine steadily, while stars seem to twinkle.",
        "kind": "avoid_word",
        "topic": "the night sky",
    }
    assert constraints.generate(2, split="test", seed=0, fmt="standard")[1]["prompt"] == (
        "Write a short note about city parks. Start your answer with the word 'Basically'."
    )
