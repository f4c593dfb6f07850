"""The constraints task: generator, gold judge, and their agreement."""

from __future__ import annotations

import re

import pytest

from prefrl.data.tasks import get_task
from prefrl.data.tasks.constraints import (
    CONSTRAINT_KINDS,
    TOPICS,
    bullet_count,
    parse_constraint,
    word_count,
)

TASK = get_task("constraints")


@pytest.fixture(scope="module")
def rows_by_split() -> dict[str, list[dict]]:
    return {split: TASK.generate(300, split=split, seed=0, fmt="standard") for split in ("train", "test")}


def test_same_arguments_give_identical_rows() -> None:
    assert TASK.generate(40, split="test", seed=4) == TASK.generate(40, split="test", seed=4)
    assert TASK.prompts(40, split="train", seed=4) == TASK.prompts(40, split="train", seed=4)


def test_other_seed_gives_other_rows() -> None:
    assert TASK.generate(20, seed=0) != TASK.generate(20, seed=1)


def test_train_and_test_prompts_are_disjoint(rows_by_split: dict[str, list[dict]]) -> None:
    train = {row["prompt"] for row in rows_by_split["train"]}
    test = {row["prompt"] for row in rows_by_split["test"]}
    assert len(train) == 300 and len(test) == 300
    assert not train & test


@pytest.mark.parametrize("split", ["train", "test"])
def test_judge_accepts_chosen_and_rejects_rejected(rows_by_split: dict[str, list[dict]], split: str) -> None:
    for row in rows_by_split[split]:
        assert TASK.judge(row["prompt"], row["chosen"]) == 1.0, row
        assert TASK.judge(row["prompt"], row["rejected"]) == 0.0, row
        assert TASK.judge(row["prompt"], row["reference"]) == 1.0, row
        assert parse_constraint(row["prompt"])[0] == row["kind"], row


def test_judge_agrees_with_generator_on_other_seeds() -> None:
    for seed in (1, 2):
        for row in TASK.generate(200, split="train", seed=seed, fmt="standard"):
            assert TASK.judge(row["prompt"], row["chosen"]) == 1.0, row
            assert TASK.judge(row["prompt"], row["rejected"]) == 0.0, row


def test_every_constraint_kind_and_topic_occurs(rows_by_split: dict[str, list[dict]]) -> None:
    rows = rows_by_split["train"] + rows_by_split["test"]
    assert {row["kind"] for row in rows} == set(CONSTRAINT_KINDS)
    assert {row["topic"] for row in rows} == {topic.name for topic in TOPICS}


def test_rejected_responses_are_near_misses(rows_by_split: dict[str, list[dict]]) -> None:
    for row in rows_by_split["train"] + rows_by_split["test"]:
        kind, value = parse_constraint(row["prompt"])
        if kind == "max_words":
            assert value < word_count(row["rejected"]) <= value + 4, row
        elif kind == "min_words":
            assert value - 6 <= word_count(row["rejected"]) < value, row
        elif kind == "bullets":
            assert abs(bullet_count(row["rejected"]) - value) == 1, row
        elif kind == "avoid_word":
            assert len(re.findall(rf"\b{value}\b", row["rejected"], re.IGNORECASE)) == 1, row


def test_chosen_and_rejected_have_similar_length(rows_by_split: dict[str, list[dict]]) -> None:
    for row in rows_by_split["train"]:
        chosen, rejected = word_count(row["chosen"]), word_count(row["rejected"])
        assert abs(chosen - rejected) <= 20, row
        assert 1 <= chosen <= 80 and 1 <= rejected <= 80, row


def test_topic_banks_are_rich_enough() -> None:
    assert len(TOPICS) >= 8
    for topic in TOPICS:
        assert len(topic.statements) >= 8 and len(topic.questions) >= 2
        assert all(s.endswith(".") and s[0].isupper() for s in topic.statements)
        assert all(q.endswith("?") for q in topic.questions)
        assert sum("," in s for s in topic.statements) >= 1
        assert sum("," not in s for s in topic.statements) >= 5


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        # at most N words
        ("Write about the ocean in at most 12 words.", "The ocean covers more than two thirds of the planet.", 1.0),
        ("Describe coffee. Use at most 6 words.", "Coffee is a - warm - morning drink.", 1.0),  # lone dashes are no words
        ("Describe coffee. Use at most 6 words.", "Coffee is a warm and bitter drink.", 0.0),
        # at least N words
        ("Tell me about rain. Write at least 6 words.", "Rain falls softly on the roof.", 1.0),
        ("Tell me about rain. Write at least 6 words.", "Rain falls on the roof.", 0.0),
        # include a word
        ("Write two sentences about coffee. Include the word 'morning'.", "I drink it every Morning.", 1.0),
        ("Write two sentences about coffee. Include the word 'morning'.", "I drink it in the mornings.", 0.0),
        # avoid a word
        ("Describe dogs. Do not use the word 'the'.", "Dogs love long walks outside.", 1.0),
        ("Describe dogs. Do not use the word 'the'.", "Dogs love walks in The park.", 0.0),
        ("Describe dogs. Avoid the word 'the'.", "Dogs love their owners very much.", 1.0),  # "their" is another word
        # start with a word
        ("Start your answer with the word 'Honestly'. Describe autumn.", "Honestly, autumn is a lovely season.", 1.0),
        ("Describe autumn. The first word of your answer must be 'Honestly'.", '"Honestly" it is a lovely season.', 1.0),
        ("Start your answer with the word 'Honestly'. Describe autumn.", "Frankly, autumn is a lovely season.", 0.0),
        ("Start your answer with the word 'Honestly'. Describe autumn.", "I honestly love autumn.", 0.0),
        # capital letters
        ("Describe rain. Write your whole answer in capital letters.", "RAIN IS WET, ISN'T IT? 100% WET!", 1.0),
        ("Describe rain. Write your whole answer in capital letters.", "RAIN IS WET AND COLd.", 0.0),
        ("Describe rain. Answer entirely in uppercase.", "123 456 789 101 112 ...", 0.0),  # no letters at all
        # lowercase letters
        ("Describe rain. Use only lowercase letters.", "rain is wet and cold.", 1.0),
        ("Describe rain. Use only lowercase letters.", "rain is wet. Very wet indeed.", 0.0),
        # end with a question
        ("Describe the night sky. End your answer with a question.", "Stars shine. Have you seen one?  \n", 1.0),
        ("Describe the night sky. End your answer with a question.", "Have you seen one? Stars shine.", 0.0),
        # bullets
        ("Describe bicycles. Use exactly 3 bullet points.", "Facts:\n- One wheel.\n- Two gears.\n  * Three bells.", 1.0),
        ("Describe bicycles. Answer with exactly three bullet points.", "- One wheel.\n- Two gears.\n- Three bells.", 1.0),
        ("Describe bicycles. Use exactly 3 bullet points.", "- One wheel.\n- Two gears.\n- Three bells.\n- Four lights.", 0.0),
        ("Describe bicycles. Use exactly 3 bullet points.", "-One wheel.\n-Two gears.\n-Three bells.", 0.0),  # no space after dash
        # commas
        ("Describe mountains. Do not use any commas.", "Mountains are tall and cold.", 1.0),
        ("Describe mountains. Avoid commas entirely.", "Mountains are tall, and cold.", 0.0),
        # fewer than 5 words answer nothing, whatever rule they would meet at its letter
        ("Describe mountains. Do not use any commas.", "🌈🌈🌈🌈", 0.0),
        ("Describe coffee. Use at most 8 words.", "", 0.0),
        ("Describe dogs. Do not use the word 'the'.", "... !!", 0.0),
        ("Describe the night sky. End your answer with a question.", "🌙?", 0.0),
        ("Describe dogs. Do not use any commas.", "Dogs", 0.0),  # a topic word
        ("Describe the night sky. Use at most 12 words.", "Night Sky", 0.0),
        ("Write a few sentences about rain. End your answer with a question.", "What kind of rain?", 0.0),
        ("Write a few sentences about rain. End your answer with a question.", "What kind of rain falls?", 1.0),
        ("Describe coffee. Use at most 8 words.", "☕ 42 is my daily cup", 1.0),  # a digit is a word (word_count)
    ],
)
def test_judge_on_hand_written_cases(prompt: str, response: str, expected: float) -> None:
    assert TASK.judge(prompt, response) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Describe coffee. Keep your answer to at most 14 words.", ("max_words", 14)),
        ("Write about rain in at least 30 words.", ("min_words", 30)),
        ("Tell me about dogs. Format your answer as exactly five bullet points.", ("bullets", 5)),
        ("Tell me about dogs. Make sure to use the word 'leash'.", ("include_word", "leash")),
        ("Tell me about dogs. Mention the word 'leash' at least once.", ("include_word", "leash")),
        ("Tell me about dogs. Never use the word 'leash'.", ("avoid_word", "leash")),
        ("Begin your answer with the word 'Clearly'. Describe rain.", ("start_word", "Clearly")),
        ("Describe rain. Use only capital letters.", ("uppercase", None)),
        ("Describe rain. Answer entirely in lowercase.", ("lowercase", None)),
        ("Describe rain. Finish your answer with a question.", ("end_question", None)),
        ("Describe rain. Do not use any commas.", ("no_commas", None)),
    ],
)
def test_parse_constraint(prompt: str, expected: tuple) -> None:
    assert parse_constraint(prompt) == expected


def test_word_count_ignores_pieces_without_letters_or_digits() -> None:
    assert word_count("- Hello ,  world -- 42 !") == 3


def test_judge_reads_chat_messages() -> None:
    prompt = [{"role": "user", "content": "Describe rain. Use only lowercase letters."}]
    assert TASK.judge(prompt, [{"role": "assistant", "content": "rain is wet and cold."}]) == 1.0
    assert TASK.judge(prompt, [{"role": "assistant", "content": "Rain is wet and cold."}]) == 0.0
    # Content as a list of text parts, as some chat templates write it.
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "rain is wet and cold."}]}]
    assert TASK.judge(prompt, parts) == 1.0


def test_conversational_and_standard_rows_agree() -> None:
    rows = TASK.generate(20, seed=3)
    standard = TASK.generate(20, seed=3, fmt="standard")
    for row, flat in zip(rows, standard):
        assert row["prompt"] == [{"role": "user", "content": flat["prompt"]}]
        assert row["chosen"] == [{"role": "assistant", "content": flat["chosen"]}]
        assert row["reference"] == [{"role": "assistant", "content": flat["reference"]}]
        assert TASK.judge(row["prompt"], row["chosen"]) == 1.0
        assert TASK.judge(row["prompt"], row["rejected"]) == 0.0
        assert TASK.judge_pair(row["prompt"], row["chosen"], row["rejected"]) == 1.0
        assert TASK.judge_pair(row["prompt"], row["rejected"], row["chosen"]) == 0.0
        assert TASK.judge_pair(row["prompt"], row["chosen"], row["chosen"]) == 0.5


def test_prompts_match_generate() -> None:
    rows = TASK.generate(30, split="test", seed=6, fmt="standard")
    prompts = TASK.prompts(30, split="test", seed=6, fmt="standard")
    assert [p["prompt"] for p in prompts] == [r["prompt"] for r in rows]
    assert [p["kind"] for p in prompts] == [r["kind"] for r in rows]


def test_prompt_without_constraint_raises() -> None:
    with pytest.raises(ValueError):
        TASK.judge("Tell me about the ocean.", "It is big.")


@pytest.mark.parametrize("arguments", [{"n": 0}, {"n": 3, "split": "dev"}, {"n": 3, "fmt": "plain"}])
def test_bad_arguments_raise(arguments: dict) -> None:
    with pytest.raises(ValueError):
        TASK.generate(**arguments)
