"""Arithmetic: integer problems with one correct answer.

Problem types (the ``kind`` column):

* ``add``, ``sub``, ``mul`` -- one operation on 2- or 3-digit numbers,
  e.g. "What is 47 + 38?" (subtraction may go below zero);
* ``two_step``, ``three_step`` -- expressions with two or three operations,
  e.g. "What is (12 + 7) * 3?" or "Compute 5 + 6 * 4.";
* ``word`` -- short word problems of two or three steps, e.g. "A shop has 45
  apples. It sells 18 and then receives 27 more. How many apples does it
  have now?".

The chosen response is correct, either short ("The answer is 85.") or with a
short worked solution ("47 + 38 = 85. The answer is 85.").  The rejected
response has the same style (so style is no shortcut) and a wrong final
answer produced by a realistic mistake (the ``error`` column):

* a slip in one step, carried through the later steps consistently:
  ``off_by_one``, ``off_by_ten``, ``swapped_digits``, ``dropped_carry``
  (digit-wise sum or difference without carrying or borrowing) and
  ``group_miscount`` (one group too many or too few in a product);
* ``wrong_operation`` -- one step adds instead of subtracting, and so on;
* ``wrong_order`` -- the operations applied in the wrong order (precedence
  or parentheses ignored, or a word problem read left to right).

The judge recomputes the answer from the prompt text alone: word problems are
matched with regexes derived from their templates, expressions are parsed and
evaluated.  The response's final answer is the number after "answer is", or
failing that the last number in the response.
"""

from __future__ import annotations

import operator
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from prefrl.data.tasks.base import Example, Task

OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}

#: The operation a ``wrong_operation`` mistake uses instead of the right one.
CONFUSED_OPERATION = {"+": "-", "-": "+", "*": "+"}

#: An operand of a step: a field of the problem ("a") or an earlier step's index.
Operand = str | int
#: One step of a solution: (operation, left operand, right operand).
StepSpec = tuple[str, Operand, Operand]
#: Where a field's value is drawn from: one of several inclusive ranges.
ValueRanges = tuple[tuple[int, int], ...]

TWO_OR_THREE_DIGITS: ValueRanges = ((10, 99), (100, 999))
SMALL: ValueRanges = ((2, 60),)
FACTOR: ValueRanges = ((2, 12),)

NAMES = ("Maya", "Leo", "Priya", "Omar", "Sofia", "Ben", "Aiko", "Lucas", "Nora", "Sam")

EXPRESSION_PROMPTS = (
    "What is {expr}?",
    "Calculate {expr}.",
    "Compute {expr}.",
    "What is the value of {expr}?",
)

#: Weights of the problem families when sampling.
FAMILY_WEIGHTS = {"single": 4, "two_step": 2, "three_step": 1, "word": 3}


@dataclass(frozen=True)
class Shape:
    """A problem template with its solution steps.

    ``template`` is an expression ("({a} + {b}) * {c}") or a whole word
    problem; ``misordered`` are the steps of the wrong-order mistake.
    """

    kind: str
    template: str
    steps: tuple[StepSpec, ...]
    ranges: Mapping[str, ValueRanges]
    misordered: tuple[StepSpec, ...] | None = None
    allow_negative: bool = False

    @property
    def is_word_problem(self) -> bool:
        return self.kind == "word"

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """A regex matching exactly the prompts of this template, capturing its fields."""
        pieces = re.split(r"\{(\w+)\}", self.template)
        pattern: list[str] = []
        seen: set[str] = set()
        for position, piece in enumerate(pieces):
            if position % 2 == 0:
                pattern.append(re.escape(piece))
            elif piece in seen:
                pattern.append(f"(?P={piece})")  # a repeated {name} must be the same name
            else:
                seen.add(piece)
                value_pattern = "[A-Z][a-z]+" if piece == "name" else r"\d+"
                pattern.append(f"(?P<{piece}>{value_pattern})")
        return re.compile("".join(pattern))


SINGLE_SHAPES = (
    Shape("add", "{a} + {b}", (("+", "a", "b"),), {"a": TWO_OR_THREE_DIGITS, "b": TWO_OR_THREE_DIGITS}),
    Shape(
        "sub",
        "{a} - {b}",
        (("-", "a", "b"),),
        {"a": TWO_OR_THREE_DIGITS, "b": TWO_OR_THREE_DIGITS},
        allow_negative=True,
    ),
    Shape("mul", "{a} * {b}", (("*", "a", "b"),), {"a": TWO_OR_THREE_DIGITS, "b": ((2, 9), (10, 99))}),
)

TWO_STEP_SHAPES = (
    Shape(
        "two_step",
        "({a} + {b}) * {c}",
        (("+", "a", "b"), ("*", 0, "c")),
        {"a": SMALL, "b": SMALL, "c": FACTOR},
        misordered=(("*", "b", "c"), ("+", "a", 0)),
    ),
    Shape(
        "two_step",
        "({a} - {b}) * {c}",
        (("-", "a", "b"), ("*", 0, "c")),
        {"a": SMALL, "b": SMALL, "c": FACTOR},
        misordered=(("*", "b", "c"), ("-", "a", 0)),
    ),
    Shape(
        "two_step",
        "{a} + {b} * {c}",
        (("*", "b", "c"), ("+", "a", 0)),
        {"a": SMALL, "b": FACTOR, "c": FACTOR},
        misordered=(("+", "a", "b"), ("*", 0, "c")),
    ),
    Shape(
        "two_step",
        "{a} * {b} - {c}",
        (("*", "a", "b"), ("-", 0, "c")),
        {"a": FACTOR, "b": FACTOR, "c": SMALL},
        misordered=(("-", "b", "c"), ("*", "a", 0)),
    ),
    Shape(
        "two_step",
        "{a} * ({b} + {c})",
        (("+", "b", "c"), ("*", "a", 0)),
        {"a": FACTOR, "b": SMALL, "c": SMALL},
        misordered=(("*", "a", "b"), ("+", 0, "c")),
    ),
    Shape("two_step", "{a} + {b} - {c}", (("+", "a", "b"), ("-", 0, "c")), {"a": SMALL, "b": SMALL, "c": SMALL}),
)

THREE_STEP_SHAPES = (
    Shape(
        "three_step",
        "({a} + {b}) * {c} - {d}",
        (("+", "a", "b"), ("*", 0, "c"), ("-", 1, "d")),
        {"a": SMALL, "b": SMALL, "c": FACTOR, "d": SMALL},
        misordered=(("*", "b", "c"), ("+", "a", 0), ("-", 1, "d")),
    ),
    Shape(
        "three_step",
        "{a} * {b} + {c} * {d}",
        (("*", "a", "b"), ("*", "c", "d"), ("+", 0, 1)),
        {"a": FACTOR, "b": FACTOR, "c": FACTOR, "d": FACTOR},
        misordered=(("*", "a", "b"), ("+", 0, "c"), ("*", 1, "d")),
    ),
    Shape(
        "three_step",
        "({a} + {b}) * ({c} - {d})",
        (("+", "a", "b"), ("-", "c", "d"), ("*", 0, 1)),
        {"a": SMALL, "b": SMALL, "c": SMALL, "d": SMALL},
    ),
)

WORD_SHAPES = (
    Shape(
        "word",
        "A shop has {a} apples. It sells {b} and then receives {c} more. "
        "How many apples does it have now?",
        (("-", "a", "b"), ("+", 0, "c")),
        {"a": ((20, 99),), "b": ((5, 60),), "c": ((5, 60),)},
        # Reading "sells b and receives c" as taking away both.
        misordered=(("+", "b", "c"), ("-", "a", 0)),
    ),
    Shape(
        "word",
        "{name} has {a} stickers and buys {b} packs with {c} stickers in each pack. "
        "How many stickers does {name} have now?",
        (("*", "b", "c"), ("+", "a", 0)),
        {"a": ((5, 60),), "b": ((2, 9),), "c": ((3, 12),)},
        misordered=(("+", "a", "b"), ("*", 0, "c")),
    ),
    Shape(
        "word",
        "A library has {a} shelves with {b} books on each shelf. Readers borrow {c} of the books. "
        "How many books are left on the shelves?",
        (("*", "a", "b"), ("-", 0, "c")),
        {"a": ((3, 12),), "b": ((10, 40),), "c": ((5, 99),)},
    ),
    Shape(
        "word",
        "A bus starts with {a} passengers. At the first stop, {b} people get off and {c} get on. "
        "At the second stop, {d} people get off. How many passengers are on the bus now?",
        (("-", "a", "b"), ("+", 0, "c"), ("-", 1, "d")),
        {"a": ((20, 60),), "b": ((2, 19),), "c": ((2, 19),), "d": ((2, 19),)},
    ),
    Shape(
        "word",
        "{name} saves {a} dollars each week for {b} weeks and then spends {c} dollars on a gift. "
        "How many dollars does {name} have left?",
        (("*", "a", "b"), ("-", 0, "c")),
        {"a": ((5, 25),), "b": ((3, 12),), "c": ((5, 60),)},
    ),
    Shape(
        "word",
        "A farm has {a} cows and {b} times as many chickens. "
        "How many cows and chickens are there altogether?",
        (("*", "a", "b"), ("+", "a", 0)),
        {"a": ((3, 30),), "b": ((2, 9),)},
    ),
    Shape(
        "word",
        "There are {a} students in each of {b} classes. Today {c} students are absent. "
        "How many students are present?",
        (("*", "a", "b"), ("-", 0, "c")),
        {"a": ((15, 32),), "b": ((2, 9),), "c": ((2, 20),)},
    ),
    Shape(
        "word",
        "A baker makes {a} trays of {b} cookies and then bakes {c} more cookies. "
        "The baker sells {d} cookies. How many cookies are left?",
        (("*", "a", "b"), ("+", 0, "c"), ("-", 1, "d")),
        {"a": ((2, 9),), "b": ((6, 24),), "c": ((5, 30),), "d": ((5, 60),)},
    ),
    Shape(
        "word",
        "{name} reads {a} pages on Monday and {b} pages on Tuesday. The book has {c} pages. "
        "How many pages are left to read?",
        (("+", "a", "b"), ("-", "c", 0)),
        {"a": ((10, 60),), "b": ((10, 60),), "c": ((100, 300),)},
        # Subtracting Monday's pages and then adding Tuesday's.
        misordered=(("-", "c", "a"), ("+", 0, "b")),
    ),
)

SHAPES_BY_FAMILY: dict[str, tuple[Shape, ...]] = {
    "single": SINGLE_SHAPES,
    "two_step": TWO_STEP_SHAPES,
    "three_step": THREE_STEP_SHAPES,
    "word": WORD_SHAPES,
}


# -- solving ------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One executed step of a solution: ``left op right = result``."""

    left: int
    op: str
    right: int
    result: int

    def render(self) -> str:
        return f"{self.left} {self.op} {self.right} = {self.result}."


def execute(
    steps: tuple[StepSpec, ...],
    fields: Mapping[str, int],
    wrong_results: Mapping[int, int] | None = None,
    wrong_ops: Mapping[int, str] | None = None,
) -> list[Line]:
    """Run the steps on the field values; a mistake in one step flows into the later ones."""
    wrong_results = wrong_results or {}
    wrong_ops = wrong_ops or {}
    lines: list[Line] = []
    for index, (op, left_operand, right_operand) in enumerate(steps):
        left = _operand_value(left_operand, fields, lines)
        right = _operand_value(right_operand, fields, lines)
        op = wrong_ops.get(index, op)
        result = wrong_results.get(index, OPERATIONS[op](left, right))
        lines.append(Line(left, op, right, result))
    return lines


def _operand_value(operand: Operand, fields: Mapping[str, int], lines: list[Line]) -> int:
    return lines[operand].result if isinstance(operand, int) else fields[operand]


class _ExpressionParser:
    """Evaluates integer expressions with + - * (also × and x) and parentheses."""

    _TOKEN = re.compile(r"\s*(\d+|[-+*×x()])")

    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.position = 0

    def _tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        position = 0
        text = text.rstrip()
        while position < len(text):
            match = self._TOKEN.match(text, position)
            if match is None:
                raise ValueError(f"cannot parse the expression {text!r}")
            tokens.append(match.group(1))
            position = match.end()
        return tokens

    def evaluate(self) -> int:
        value = self._sum()
        if self.position != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.position]!r} in expression")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ValueError("the expression ends too early")
        self.position += 1
        return token

    def _sum(self) -> int:
        value = self._product()
        while self._peek() in ("+", "-"):
            value = OPERATIONS[self._take()](value, self._product())
        return value

    def _product(self) -> int:
        value = self._factor()
        while self._peek() in ("*", "×", "x"):
            self._take()
            value *= self._factor()
        return value

    def _factor(self) -> int:
        token = self._take()
        if token == "-":
            return -self._factor()
        if token == "(":
            value = self._sum()
            if self._take() != ")":
                raise ValueError("unbalanced parentheses in expression")
            return value
        if token.isdigit():
            return int(token)
        raise ValueError(f"unexpected {token!r} in expression")


_EXPRESSION_PROMPT = re.compile(
    r"(?:what is(?: the value of)?|calculate|compute|evaluate)\s+"
    r"(?P<expr>[\d\s+\-*×x()]+?)\s*[?.!]?",
    re.IGNORECASE,
)


def solve_prompt(prompt: str) -> int:
    """The correct answer to a prompt of this task, recomputed from its text."""
    text = prompt.strip()
    for shape in WORD_SHAPES:
        match = shape.regex.fullmatch(text)
        if match:
            fields = {key: int(value) for key, value in match.groupdict().items() if key != "name"}
            return execute(shape.steps, fields)[-1].result
    match = _EXPRESSION_PROMPT.fullmatch(text)
    if match:
        return _ExpressionParser(match.group("expr")).evaluate()
    raise ValueError(f"not an arithmetic prompt of this task: {prompt!r}")


# -- reading answers ------------------------------------------------------------

_NUMBER = r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d)"
_ANSWER_IS = re.compile(r"answer\s+is\s*[:=]?\s*[*$]*\s*(" + _NUMBER + ")", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)


def _number_value(match: re.Match[str], text: str) -> Decimal:
    number = match.group(match.lastindex or 0).replace(",", "").replace("−", "-")
    start = match.start(match.lastindex or 0)
    # "12-5": a minus right after a number or ")" is subtraction, not a sign.
    if number.startswith("-") and text[:start].rstrip()[-1:] in tuple("0123456789)"):
        number = number[1:]
    return Decimal(number)


def final_answer(response: str) -> Decimal | None:
    """The number after the last "answer is", else the last number; None if there is none."""
    stated = list(_ANSWER_IS.finditer(response))
    if stated:
        return _number_value(stated[-1], response)
    numbers = list(_ANY_NUMBER.finditer(response))
    return _number_value(numbers[-1], response) if numbers else None


# -- generating ---------------------------------------------------------------------


@dataclass
class Problem:
    """A sampled problem: its shape, field values, prompt text and correct solution."""

    shape: Shape
    fields: Mapping[str, int]
    prompt: str
    solution: list[Line]

    @property
    def answer(self) -> int:
        return self.solution[-1].result


def _sample_fields(rng: random.Random, shape: Shape) -> dict[str, int]:
    return {name: rng.randint(*rng.choice(ranges)) for name, ranges in shape.ranges.items()}


def _is_plausible(lines: list[Line], shape: Shape) -> bool:
    """Word problems and multi-step expressions stay positive at every step."""
    return shape.allow_negative or all(line.result > 0 for line in lines)


def sample_problem(rng: random.Random) -> Problem:
    """Draw a problem whose intermediate and final results are plausible."""
    family = rng.choices(list(FAMILY_WEIGHTS), weights=list(FAMILY_WEIGHTS.values()))[0]
    shape = rng.choice(SHAPES_BY_FAMILY[family])
    while True:
        fields = _sample_fields(rng, shape)
        solution = execute(shape.steps, fields)
        if _is_plausible(solution, shape):
            break
    if shape.is_word_problem:
        prompt = shape.template.format(name=rng.choice(NAMES), **fields)
    else:
        expression = shape.template.format(**fields)
        prompt = rng.choice(EXPRESSION_PROMPTS).format(expr=expression)
    return Problem(shape, fields, prompt, solution)


def _without_carry(a: int, b: int, digit_op: Callable[[int, int], int]) -> int:
    """Combine a and b digit by digit, ignoring carries and borrows."""
    total, place = 0, 1
    while a or b:
        total += digit_op(a % 10, b % 10) * place
        a, b, place = a // 10, b // 10, place * 10
    return total


def _swap_adjacent_digits(rng: random.Random, value: int) -> int | None:
    digits = list(str(abs(value)))
    positions = [
        i
        for i in range(len(digits) - 1)
        if digits[i] != digits[i + 1] and not (i == 0 and digits[1] == "0")
    ]
    if not positions:
        return None
    i = rng.choice(positions)
    digits[i], digits[i + 1] = digits[i + 1], digits[i]
    swapped = int("".join(digits))
    return -swapped if value < 0 else swapped


def slip_candidates(rng: random.Random, line: Line) -> dict[str, int]:
    """Wrong results for one step, by the kind of slip, all different from the right one."""
    candidates = {
        "off_by_one": line.result + rng.choice((-1, 1)),
        "off_by_ten": line.result + rng.choice((-10, 10)),
    }
    swapped = _swap_adjacent_digits(rng, line.result)
    if swapped is not None:
        candidates["swapped_digits"] = swapped
    if line.op == "+" and line.left >= 0 and line.right >= 0:
        candidates["dropped_carry"] = _without_carry(line.left, line.right, lambda x, y: (x + y) % 10)
    if line.op == "-" and line.left >= line.right >= 0:
        candidates["dropped_carry"] = _without_carry(line.left, line.right, lambda x, y: abs(x - y))
    if line.op == "*":
        candidates["group_miscount"] = line.result + rng.choice((-1, 1)) * line.left
    return {kind: value for kind, value in candidates.items() if value != line.result}


def _mistake(rng: random.Random, problem: Problem) -> tuple[str, list[Line]]:
    """One candidate wrong solution, with the name of its mistake."""
    shape, fields = problem.shape, problem.fields
    modes = ["slip"]
    if len(shape.steps) > 1:
        modes.append("wrong_operation")
    if shape.misordered is not None:
        modes.append("wrong_order")
    mode = rng.choice(modes)
    if mode == "wrong_order":
        return mode, execute(shape.misordered, fields)  # type: ignore[arg-type]
    index = rng.randrange(len(shape.steps))
    if mode == "wrong_operation":
        wrong_op = CONFUSED_OPERATION[shape.steps[index][0]]
        return mode, execute(shape.steps, fields, wrong_ops={index: wrong_op})
    slips = slip_candidates(rng, problem.solution[index])
    kind = rng.choice(sorted(slips))
    return kind, execute(shape.steps, fields, wrong_results={index: slips[kind]})


def wrong_solution(rng: random.Random, problem: Problem) -> tuple[str, list[Line]]:
    """A plausible wrong solution whose final answer differs from the right one."""
    for _ in range(30):
        mistake, lines = _mistake(rng, problem)
        if lines[-1].result != problem.answer and _is_plausible(lines, problem.shape):
            return mistake, lines
    # Always possible: the last step is one too high.
    last = len(problem.solution) - 1
    return "off_by_one", execute(
        problem.shape.steps, problem.fields, wrong_results={last: problem.answer + 1}
    )


def render(lines: list[Line], worked: bool) -> str:
    """A response: the final answer, after the worked steps if ``worked``."""
    conclusion = f"The answer is {lines[-1].result}."
    if not worked:
        return conclusion
    return " ".join([*(line.render() for line in lines), conclusion])


class ArithmeticTask(Task):
    """Integer arithmetic: single operations, multi-step expressions and word problems."""

    name = "arithmetic"

    def sample(self, rng: random.Random) -> Example:
        problem = sample_problem(rng)
        worked = rng.random() < 0.5
        mistake, wrong_lines = wrong_solution(rng, problem)
        chosen = render(problem.solution, worked)
        return Example(
            prompt=problem.prompt,
            chosen=chosen,
            rejected=render(wrong_lines, worked),
            reference=chosen,
            extra={
                "answer": str(problem.answer),
                "kind": problem.shape.kind,
                "style": "worked" if worked else "short",
                "error": mistake,
            },
        )

    def judge_text(self, prompt: str, response: str) -> float:
        given = final_answer(response)
        return 1.0 if given is not None and given == solve_prompt(prompt) else 0.0
