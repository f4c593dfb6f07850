"""The arithmetic task: generator, gold judge, and their agreement."""

from __future__ import annotations

import pytest

from prefrl.data.tasks import get_task
from prefrl.data.tasks.arithmetic import final_answer, solve_prompt

TASK = get_task("arithmetic")


@pytest.fixture(scope="module")
def rows_by_split() -> dict[str, list[dict]]:
    return {split: TASK.generate(300, split=split, seed=0, fmt="standard") for split in ("train", "test")}


def test_same_arguments_give_identical_rows() -> None:
    assert TASK.generate(40, split="train", seed=7) == TASK.generate(40, split="train", seed=7)
    assert TASK.generate(40, split="test", seed=7) == TASK.generate(40, split="test", seed=7)


def test_other_seed_gives_other_rows() -> None:
    assert TASK.generate(20, seed=0) != TASK.generate(20, seed=1)


def test_shorter_request_is_a_prefix() -> None:
    assert TASK.generate(10, seed=3) == TASK.generate(25, seed=3)[:10]


def test_train_and_test_prompts_are_disjoint(rows_by_split: dict[str, list[dict]]) -> None:
    train = {row["prompt"] for row in rows_by_split["train"]}
    test = {row["prompt"] for row in rows_by_split["test"]}
    assert len(train) == 300 and len(test) == 300  # no duplicate within a split
    assert not train & test


@pytest.mark.parametrize("split", ["train", "test"])
def test_judge_accepts_chosen_and_rejects_rejected(rows_by_split: dict[str, list[dict]], split: str) -> None:
    for row in rows_by_split[split]:
        assert TASK.judge(row["prompt"], row["chosen"]) == 1.0, row
        assert TASK.judge(row["prompt"], row["rejected"]) == 0.0, row
        assert TASK.judge(row["prompt"], row["reference"]) == 1.0, row
        assert str(solve_prompt(row["prompt"])) == row["answer"], row


def test_chosen_and_rejected_share_a_style(rows_by_split: dict[str, list[dict]]) -> None:
    for row in rows_by_split["train"] + rows_by_split["test"]:
        assert ("=" in row["chosen"]) == ("=" in row["rejected"]), row
        assert row["chosen"].endswith(".") and row["rejected"].endswith(".")
    styles = {row["style"] for row in rows_by_split["train"]}
    assert styles == {"short", "worked"}


def test_all_problem_kinds_and_mistakes_occur(rows_by_split: dict[str, list[dict]]) -> None:
    rows = rows_by_split["train"] + rows_by_split["test"]
    assert {row["kind"] for row in rows} == {"add", "sub", "mul", "two_step", "three_step", "word"}
    assert {"off_by_one", "off_by_ten", "swapped_digits", "wrong_operation", "wrong_order"} <= {
        row["error"] for row in rows
    }


def test_responses_stay_short(rows_by_split: dict[str, list[dict]]) -> None:
    for row in rows_by_split["train"]:
        for response in (row["chosen"], row["rejected"]):
            assert len(response.split()) <= 40, response


def _worked_lines(response: str) -> tuple[list[tuple[int, str, int, int]], int]:
    """The steps ``(left, op, right, result)`` of a worked response, and its final answer."""
    *steps, conclusion = response.split(". ")
    lines = []
    for step in steps:
        expression, result = step.split(" = ")
        left, op, right = expression.split(" ")
        lines.append((int(left), op, int(right), int(result)))
    return lines, int(conclusion.removeprefix("The answer is ").rstrip("."))


def test_wrong_steps_are_carried_through_consistently(rows_by_split: dict[str, list[dict]]) -> None:
    """Chosen solutions are right line by line; rejected ones have at most one false line."""
    operations = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}
    for row in rows_by_split["train"]:
        if row["style"] != "worked":
            continue
        for response, most_false_lines in ((row["chosen"], 0), (row["rejected"], 1)):
            lines, final = _worked_lines(response)
            false_lines = [line for line in lines if operations[line[1]](line[0], line[2]) != line[3]]
            assert len(false_lines) <= most_false_lines, response
            assert lines[-1][3] == final, response


SHOP = (
    "A shop has 45 apples. It sells 18 and then receives 27 more. "
    "How many apples does it have now?"
)
STICKERS = (
    "Leo has 10 stickers and buys 3 packs with 4 stickers in each pack. "
    "How many stickers does Leo have now?"
)


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        ("What is 17 + 25?", "The answer is 42.", 1.0),
        ("What is 17 + 25?", "17 + 25 = 32. The answer is 32.", 0.0),
        ("What is 17 + 25?", "42", 1.0),
        ("What is 17 + 25?", "17 + 25 = 42", 1.0),
        ("What is 17 + 25?", "The answer is 42. I checked it 3 times.", 1.0),
        ("What is 17 + 25?", "The answer is 42.0.", 1.0),
        ("What is 17 + 25?", "I am not sure.", 0.0),
        ("What is 17 - 22?", "The answer is -5.", 1.0),
        ("What is 17 - 22?", "17 - 22 = -5", 1.0),
        ("What is 17 - 22?", "The answer is 5.", 0.0),
        ("What is 30 - 35?", "30 - 35 = -5", 1.0),
        ("What is 30 - 35?", "10-5", 0.0),  # a minus right after a digit is subtraction, not a sign
        ("Calculate 45 * 30.", "The answer is 1,350.", 1.0),
        ("Calculate 45 * 30.", "The answer is 1350.", 1.0),
        ("Compute 45 × 30.", "1350", 1.0),
        ("What is (12 + 7) * 3?", "12 + 7 = 19. 19 * 3 = 57. The answer is 57.", 1.0),
        ("What is 12 + 7 * 3?", "The answer is 57.", 0.0),
        ("What is 12 + 7 * 3?", "7 * 3 = 21. 12 + 21 = 33. The answer is 33.", 1.0),
        ("What is the value of (40 + 5) * (9 - 4)?", "The answer is 225.", 1.0),
        (SHOP, "The answer is 54.", 1.0),
        (SHOP, "45 + 18 = 63. 63 + 27 = 90. The answer is 90.", 0.0),
        (STICKERS, "3 * 4 = 12. 10 + 12 = 22. The answer is 22.", 1.0),
        (STICKERS, "The answer is 52.", 0.0),
    ],
)
def test_judge_on_hand_written_cases(prompt: str, response: str, expected: float) -> None:
    assert TASK.judge(prompt, response) == expected


def test_final_answer_reading() -> None:
    assert final_answer("The answer is -1,234.") == -1234
    assert final_answer("first 3, then 4") == 4
    assert final_answer("no digits here") is None


def test_judge_reads_chat_messages() -> None:
    prompt = [
        {"role": "system", "content": "You are a careful calculator."},
        {"role": "user", "content": "What is 17 + 25?"},
    ]
    assert TASK.judge(prompt, [{"role": "assistant", "content": "The answer is 42."}]) == 1.0
    conversation = [*prompt, {"role": "assistant", "content": "The answer is 41."}]
    assert TASK.judge(prompt, conversation) == 0.0
    assert TASK.judge(prompt, {"role": "assistant", "content": "42"}) == 1.0


def test_conversational_rows() -> None:
    rows = TASK.generate(20, seed=2)
    assert rows == TASK.generate(20, seed=2, fmt="conversational")
    standard = TASK.generate(20, seed=2, fmt="standard")
    for row, flat in zip(rows, standard):
        assert row["prompt"] == [{"role": "user", "content": flat["prompt"]}]
        assert row["chosen"] == [{"role": "assistant", "content": flat["chosen"]}]
        assert row["rejected"] == [{"role": "assistant", "content": flat["rejected"]}]
        assert TASK.judge(row["prompt"], row["chosen"]) == 1.0
        assert TASK.judge(row["prompt"], row["rejected"]) == 0.0


def test_judge_pair() -> None:
    prompt = "What is 17 + 25?"
    assert TASK.judge_pair(prompt, "The answer is 42.", "The answer is 41.") == 1.0
    assert TASK.judge_pair(prompt, "The answer is 41.", "The answer is 42.") == 0.0
    assert TASK.judge_pair(prompt, "The answer is 40.", "The answer is 41.") == 0.5


def test_prompts_match_generate() -> None:
    rows = TASK.generate(30, split="test", seed=5)
    prompts = TASK.prompts(30, split="test", seed=5)
    assert [p["prompt"] for p in prompts] == [r["prompt"] for r in rows]
    assert [p["reference"] for p in prompts] == [r["reference"] for r in rows]
    assert all("chosen" not in p and "rejected" not in p for p in prompts)


def test_unknown_prompt_raises() -> None:
    with pytest.raises(ValueError):
        TASK.judge("Write a poem about the sea.", "42")


@pytest.mark.parametrize(
    "arguments",
    [
        {"n": 0},
        {"n": -3},
        {"n": 5, "split": "validation"},
        {"n": 5, "fmt": "chatml"},
    ],
)
def test_bad_arguments_raise(arguments: dict) -> None:
    with pytest.raises(ValueError):
        TASK.generate(**arguments)
    with pytest.raises(ValueError):
        TASK.prompts(**arguments)


def test_bad_split_message_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="train, test"):
        TASK.generate(5, split="dev")
