"""The out-of-distribution split of the built-in tasks: disjoint from train/test, judged correctly,
balanced over its kinds, deterministic."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from prefrl.data.loaders import load_preference_pairs, load_prompts
from prefrl.data.tasks import SPLITS, TASKS, arithmetic, constraints, get_task
from prefrl.data.tasks.arithmetic import final_answer, solve_prompt
from prefrl.data.tasks.constraints import parse_constraint

SRC = Path(__file__).resolve().parents[3] / "src"
OOD_ONLY = {"arithmetic": set(arithmetic.OOD_ONLY_KINDS), "constraints": set(constraints.OOD_ONLY_KINDS)}
N = 400


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str], list[dict]]:
    return {
        (name, split): get_task(name).generate(N, split=split, seed=0, fmt="standard")
        for name in TASKS
        for split in SPLITS
    }


def test_ood_is_a_split_everywhere_a_split_is_named() -> None:
    assert SPLITS == ("train", "test", "ood")
    for name in TASKS:
        pairs = load_preference_pairs(name, "ood", 0, 12)
        prompts = load_prompts(name, "ood", 0, 12)
        assert len(pairs) == 12 and [p.prompt for p in pairs] == [p.prompt for p in prompts]
        assert all(p.extra["kind"] in get_task(name).ood_kinds for p in pairs)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_ood_prompts_share_no_text_with_train_or_test(rows: dict, name: str) -> None:
    ood = {row["prompt"] for row in rows[(name, "ood")]}
    assert len(ood) == N  # distinct within the split
    for split in ("train", "test"):
        assert not ood & {row["prompt"] for row in rows[(name, split)]}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_ood_only_kinds_never_appear_in_train_or_test(rows: dict, name: str) -> None:
    task = get_task(name)
    assert len(OOD_ONLY[name]) >= 2 and OOD_ONLY[name] <= set(task.ood_kinds)
    for split in ("train", "test"):
        for seed in (0, 1, 2):
            in_distribution = task.generate(500, split=split, seed=seed, fmt="standard")
            assert not {row["kind"] for row in in_distribution} & OOD_ONLY[name]
    # and they are really there in ood
    assert OOD_ONLY[name] <= {row["kind"] for row in rows[(name, "ood")]}


def _literal_pieces(templates: list[str]) -> set[str]:
    """The fixed wording of templates: the text between placeholders, long enough to be telling."""
    pieces = set()
    for template in templates:
        for piece in re.split(r"\{\w+\}|'", template):
            piece = piece.strip(" .?,:\n")
            if len(piece) >= 12:
                pieces.add(piece.lower())
    return pieces


def test_constraints_ood_uses_other_requests_phrasings_and_topics(rows: dict) -> None:
    in_distribution = [row["prompt"].lower() for split in ("train", "test") for row in rows[("constraints", split)]]
    ood = [row["prompt"].lower() for row in rows[("constraints", "ood")]]
    # other topics
    train_topics = {topic.name for topic in constraints.TOPICS}
    ood_topics = {topic.name for topic in constraints.OOD_TOPICS}
    assert not train_topics & ood_topics
    assert {row["topic"] for row in rows[("constraints", "ood")]} == ood_topics
    assert not {s for t in constraints.TOPICS for s in t.statements} & {s for t in constraints.OOD_TOPICS for s in t.statements}
    # other requests and other constraint wordings, both ways round
    train_wording = _literal_pieces(
        [*constraints.BASE_PROMPTS, *constraints.LIST_BASE_PROMPTS, *(p for ps in constraints.CONSTRAINT_PHRASES.values() for p in ps),
         *(p for ps in constraints.INLINE_PROMPTS.values() for p in ps)]
    )
    ood_wording = _literal_pieces(
        [*constraints.OOD_BASE_PROMPTS, *constraints.OOD_LIST_PROMPTS, *(p for ps in constraints.OOD_CONSTRAINT_PHRASES.values() for p in ps)]
    )
    assert train_wording and ood_wording
    for prompt in ood:
        assert not any(piece in prompt for piece in train_wording), prompt
    for prompt in in_distribution:
        assert not any(piece in prompt for piece in ood_wording), prompt
    assert not set(constraints.OPENING_WORDS) & set(constraints.OOD_OPENING_WORDS)


def test_arithmetic_ood_uses_other_wordings_templates_and_names(rows: dict) -> None:
    in_distribution = [row["prompt"] for split in ("train", "test") for row in rows[("arithmetic", split)]]
    ood = [row["prompt"] for row in rows[("arithmetic", "ood")]]
    openings = [p.split("{expr}")[0] for p in arithmetic.EXPRESSION_PROMPTS]
    ood_openings = [p.split("{expr}")[0] for p in arithmetic.OOD_EXPRESSION_PROMPTS if not p.startswith("{expr}")]
    for prompt in ood:
        assert not any(prompt.startswith(opening) for opening in openings), prompt
        assert not any(shape.regex.fullmatch(prompt) for shape in arithmetic.WORD_SHAPES), prompt
        assert not any(name in prompt.split() for name in arithmetic.NAMES), prompt
    for prompt in in_distribution:
        assert not any(prompt.startswith(opening) for opening in ood_openings), prompt
        assert not any(shape.regex.fullmatch(prompt) for shape in arithmetic.OOD_WHOLE_PROMPT_SHAPES), prompt
        assert "÷" not in prompt and "×" not in prompt
    in_templates = {s.template for shapes in arithmetic.SHAPES_BY_FAMILY.values() for s in shapes}
    ood_multi_step = {s.template for kind in ("two_step", "three_step", "word") for s in arithmetic.OOD_SHAPES_BY_KIND[kind]}
    assert not in_templates & ood_multi_step


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("seed", [0, 1])
def test_judge_accepts_chosen_and_rejects_rejected_on_ood(name: str, seed: int) -> None:
    task = get_task(name)
    for row in task.generate(N, split="ood", seed=seed, fmt="standard"):
        assert task.judge(row["prompt"], row["chosen"]) == 1.0, row
        assert task.judge(row["prompt"], row["rejected"]) == 0.0, row
        assert task.judge(row["prompt"], row["reference"]) == 1.0, row
        if name == "constraints":
            assert parse_constraint(row["prompt"])[0] == row["kind"], row
        else:
            assert str(solve_prompt(row["prompt"])) == row["answer"], row
    # the conversational rows are judged the same way
    for row in task.generate(40, split="ood", seed=seed):
        assert task.judge_pair(row["prompt"], row["chosen"], row["rejected"]) == 1.0, row


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("n", [1, 7, 100, 137])
def test_ood_kinds_are_balanced(name: str, n: int) -> None:
    task = get_task(name)
    counts = Counter(row["kind"] for row in task.prompts(n, split="ood", seed=5))
    kinds = len(task.ood_kinds)
    assert set(counts) <= set(task.ood_kinds)
    if n >= kinds:
        assert set(counts) == set(task.ood_kinds)
    full_rounds = n // kinds
    assert all(full_rounds <= counts[kind] <= full_rounds + 1 for kind in task.ood_kinds), counts


@pytest.mark.parametrize("name", sorted(TASKS))
def test_ood_is_deterministic_by_seed(name: str) -> None:
    task = get_task(name)
    assert task.generate(60, split="ood", seed=3) == task.generate(60, split="ood", seed=3)
    assert task.generate(60, split="ood", seed=3) != task.generate(60, split="ood", seed=4)
    assert task.generate(20, split="ood", seed=3) == task.generate(60, split="ood", seed=3)[:20]
    assert [r["prompt"] for r in task.prompts(30, split="ood", seed=3)] == [
        r["prompt"] for r in task.generate(30, split="ood", seed=3)
    ]


def test_ood_rows_do_not_depend_on_the_hash_seed() -> None:
    script = (
        "import json; from prefrl.data.tasks import TASKS; "
        "print(json.dumps({name: task.generate(30, split='ood', seed=9) for name, task in TASKS.items()}))"
    )
    here = {name: task.generate(30, split="ood", seed=9) for name, task in TASKS.items()}
    env = {**os.environ, "PYTHONHASHSEED": "3", "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == here


# -- the gold judge on the ood wordings and kinds, by hand --------------------------


def test_every_ood_wording_parses_to_its_kind_for_every_value() -> None:
    """No constraint value or wording of the ood split is read as another kind."""
    for kind, phrases in constraints.OOD_CONSTRAINT_PHRASES.items():
        if kind in ("include_word", "avoid_word"):
            values = sorted({w for t in constraints.OOD_TOPICS for w in constraints._TOPIC_WORDS[t.name].candidates} | {"the", "and"})
        elif kind == "start_word":
            values = list(constraints.OOD_OPENING_WORDS)
        elif kind in constraints.NUMERIC_KINDS:
            values = [2, 3, 4, 5, 8, 24, 40]
        else:
            values = [None]
        for phrase in phrases:
            for value in values:
                for number in {value, constraints.WORD_FOR_NUMBER.get(value)} if isinstance(value, int) else {value}:
                    if number is None and isinstance(value, int):
                        continue
                    text = phrase.format(n=number, word=value)
                    for layout in constraints.OOD_LAYOUTS:
                        prompt = layout.format(request="Give me your take on museums.", constraint=text)
                        assert parse_constraint(prompt) == (kind, value), prompt


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        ("Give me your take on snow. Write exactly 3 sentences.", "Snow is cold. It falls in winter! Do you like it?", 1.0),
        ("Give me your take on snow. Write exactly three sentences.", "Snow is cold. It falls in winter.", 0.0),
        ("Give me your take on snow.\nRule: Your reply should be 2 sentences long.", "Snow is cold.  It is white.\n", 1.0),
        ("Give me your take on snow. Give your reply a title wrapped in double angle brackets, like <<title>>.", "<<Snow Days>>\nSnow is cold.", 1.0),
        ("Give me your take on snow. Give your reply a title wrapped in double angle brackets, like <<title>>.", "<Snow Days>\nSnow is cold.", 0.0),
        ("Give me your take on snow. Give your reply a title wrapped in double angle brackets, like <<title>>.", "<< >>\nSnow is cold.", 0.0),
        ("Give me your take on snow. At the end, add a postscript starting with 'P.S.'", "Snow is cold.\n\nP.S. Wear a hat.", 1.0),
        ("Give me your take on snow. At the end, add a postscript starting with 'P.S.'", "Snow is cold. P.S. Wear a hat.", 1.0),
        ("Give me your take on snow. At the end, add a postscript starting with 'P.S.'", "Snow is cold.\n\nWear a hat.", 0.0),
        ("Give me your take on snow. At the end, add a postscript starting with 'P.S.'", "P.S. Snow is cold.", 0.0),
        ("Give me your take on snow. Reply in all caps.", "SNOW IS COLD AND WHITE.", 1.0),
        ("Give me your take on snow. Reply in all lower case.", "snow is Cold.", 0.0),
        ("Give me your take on snow. Keep the reply within 6 words.", "Snow is cold and white.", 1.0),
        ("Give me your take on snow. Let the reply run to 4 words or more.", "Snow is cold.", 0.0),
        ("Give me your take on snow. Not a single comma may appear.", "Snow is cold, white.", 0.0),
        ("Give me your take on snow. Close with a question for the reader.", "Snow is cold. Do you like it?", 1.0),
    ],
)
def test_constraints_judge_on_ood_cases(prompt: str, response: str, expected: float) -> None:
    assert get_task("constraints").judge(prompt, response) == expected


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        ("Divide 156 by 12.", 13),
        ("Mei shares 84 stickers equally among 7 friends. How many stickers does each friend get?", 12),
        ("How many boxes of 12 are needed to pack exactly 96 eggs?", 8),
        ("Find 15% of 240.", 36),
        ("How much is 75 percent of 40?", 30),
        ("A jacket costs 80 dollars and is on sale for 25% off. How many dollars does it cost on sale?", 60),
        ("Solve for x: x + 37 = 91.", 54),
        ("If x - 12 = 30, what is x?", 42),
        ("7 times a number is 91. What is the number?", 13),
        ("Work out 3 × 4 + 5.", 17),
        ("17 * 3 equals what?", 51),
        ("Tell me what (12 + 8) - 5 comes to.", 15),
        ("What is 144 ÷ 12?", 12),  # the train/test openings also read ÷ now
        ("Determine 7 - 2 * 3.", 1),
    ],
)
def test_arithmetic_judge_on_ood_forms(prompt: str, answer: int) -> None:
    task = get_task("arithmetic")
    assert solve_prompt(prompt) == answer
    assert task.judge(prompt, f"The answer is {answer}.") == 1.0
    assert task.judge(prompt, f"The answer is {answer + 1}.") == 0.0


def test_inexact_division_is_not_rounded() -> None:
    assert solve_prompt("Divide 7 by 2.") == final_answer("The answer is 3.5.")
    assert get_task("arithmetic").judge("Divide 7 by 2.", "The answer is 3.") == 0.0
