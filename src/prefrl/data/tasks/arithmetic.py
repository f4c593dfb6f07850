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

The ``ood`` split (``OOD_KINDS``, equally frequent) words expressions
differently ("Work out ...", "... equals what?", × for *), uses other
multi-step templates and other word problems and names, and adds three problem
forms that train/test never contain (``OOD_ONLY_KINDS``): ``division`` (exact,
"Divide 156 by 12."), ``percent`` ("Find 15% of 240.", a sale price) and
``equation`` ("Solve for x: x + 37 = 91.").  The judge tries the train/test
templates first, exactly as before, then the ood ones; a division that does
not come out even is compared exactly, never rounded.
"""

from __future__ import annotations

import math
import operator
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cached_property

from prefrl.data.tasks.base import Example, Task


def exact_division(a: int, b: int) -> int | Fraction:
    """``a / b`` as an int when it divides evenly, else as a Fraction (never a rounded float)."""
    if b == 0:
        raise ValueError("division by zero in the problem")
    return a // b if a % b == 0 else Fraction(a, b)


OPERATIONS: dict[str, Callable[[int, int], int | Fraction]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": exact_division,  # only the ood split's problems divide
}

#: The operation a ``wrong_operation`` mistake uses instead of the right one.
CONFUSED_OPERATION = {"+": "-", "-": "+", "*": "+", "/": "-"}

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
    # The ood split's problem forms also use these:
    #: fields computed from the drawn ones (e.g. a dividend that is a multiple of the divisor)
    derive: Callable[[Mapping[str, int]], Mapping[str, int]] | None = None
    #: fixed operands of the steps that the prompt does not show (e.g. 100 for a percentage)
    constants: Mapping[str, int] = field(default_factory=dict)
    #: the template is a whole prompt (a word problem or a stated problem), not an expression
    whole_prompt: bool = False
    #: what the ``misordered`` steps are called as a mistake
    misordered_name: str = "wrong_order"

    @property
    def is_word_problem(self) -> bool:
        return self.kind == "word"

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """A regex matching exactly the prompts of this template, capturing its fields."""
        return template_regex(self.template)

    def solve(self, fields: Mapping[str, int]) -> int | Fraction:
        """The answer, from the prompt's fields."""
        return execute(self.steps, {**self.constants, **fields})[-1].result


def template_regex(template: str) -> re.Pattern[str]:
    """A regex matching exactly the texts of ``template``: ``{name}`` is a capitalised name, any
    other ``{field}`` an unsigned integer, captured under its name."""
    pieces = re.split(r"\{(\w+)\}", template)
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


# -- the ood split ----------------------------------------------------------------
# Other wordings, other word-problem topics and names, other expression templates, and three
# problem forms that train/test never contain: division, percentages and equations.

OOD_NAMES = ("Ravi", "Elena", "Kofi", "Mei", "Tomas", "Zara", "Ines", "Yusuf")

OOD_EXPRESSION_PROMPTS = (
    "Work out {expr}.",
    "Find the value of {expr}.",
    "Determine {expr}.",
    "{expr} equals what?",
    "Tell me what {expr} comes to.",
)

#: How the ood split writes operations, in prompts and in worked solutions.
OOD_SYMBOLS = {"*": "×", "/": "÷"}

OOD_TWO_STEP_SHAPES = (
    Shape(
        "two_step",
        "{a} * {b} + {c}",
        (("*", "a", "b"), ("+", 0, "c")),
        {"a": FACTOR, "b": FACTOR, "c": SMALL},
        misordered=(("+", "b", "c"), ("*", "a", 0)),
    ),
    Shape(
        "two_step",
        "{a} - {b} * {c}",
        (("*", "b", "c"), ("-", "a", 0)),
        {"a": ((60, 160),), "b": FACTOR, "c": FACTOR},
        misordered=(("-", "a", "b"), ("*", 0, "c")),
    ),
    Shape(
        "two_step",
        "({a} + {b}) - {c}",
        (("+", "a", "b"), ("-", 0, "c")),
        {"a": SMALL, "b": SMALL, "c": SMALL},
    ),
)

OOD_THREE_STEP_SHAPES = (
    Shape(
        "three_step",
        "{a} * ({b} + {c}) - {d}",
        (("+", "b", "c"), ("*", "a", 0), ("-", 1, "d")),
        {"a": FACTOR, "b": SMALL, "c": SMALL, "d": SMALL},
        misordered=(("*", "a", "b"), ("+", 0, "c"), ("-", 1, "d")),
    ),
    Shape(
        "three_step",
        "({a} - {b}) * {c} + {d}",
        (("-", "a", "b"), ("*", 0, "c"), ("+", 1, "d")),
        {"a": SMALL, "b": SMALL, "c": FACTOR, "d": SMALL},
        misordered=(("*", "b", "c"), ("-", "a", 0), ("+", 1, "d")),
    ),
)

OOD_WORD_SHAPES = (
    Shape(
        "word",
        "A train leaves the station with {a} passengers. At the next stop {b} people get on and {c} get off. "
        "How many passengers are on the train after that stop?",
        (("+", "a", "b"), ("-", 0, "c")),
        {"a": ((20, 90),), "b": ((3, 40),), "c": ((3, 40),)},
        misordered=(("-", "a", "b"), ("+", 0, "c")),  # swapping who got on and who got off
        whole_prompt=True,
    ),
    Shape(
        "word",
        "{name} plants {a} rows of tulips with {b} tulips in each row. Then {c} of the tulips wilt. "
        "How many healthy tulips does {name} have?",
        (("*", "a", "b"), ("-", 0, "c")),
        {"a": ((3, 12),), "b": ((4, 15),), "c": ((2, 30),)},
        whole_prompt=True,
    ),
    Shape(
        "word",
        "A school club raises {a} dollars at a bake sale and {b} dollars at a car wash. "
        "It spends {c} dollars on new equipment. How many dollars does the club have left?",
        (("+", "a", "b"), ("-", 0, "c")),
        {"a": ((20, 150),), "b": ((20, 150),), "c": ((10, 120),)},
        whole_prompt=True,
    ),
    Shape(
        "word",
        "A parking garage has {a} floors with {b} spaces on each floor. There are {c} cars parked in it. "
        "How many spaces are still free?",
        (("*", "a", "b"), ("-", 0, "c")),
        {"a": ((2, 8),), "b": ((12, 40),), "c": ((5, 90),)},
        whole_prompt=True,
    ),
    Shape(
        "word",
        "{name} buys {a} notebooks that cost {b} dollars each and pays with {c} dollars. "
        "How many dollars of change does {name} get?",
        (("*", "a", "b"), ("-", "c", 0)),
        {"a": ((2, 9),), "b": ((2, 12),), "c": ((110, 200),)},
        whole_prompt=True,
    ),
    Shape(
        "word",
        "A recipe uses {a} grams of flour per batch. {name} bakes {b} batches and buys {c} more grams "
        "for the next day. How many grams of flour does {name} use or buy in total?",
        (("*", "a", "b"), ("+", 0, "c")),
        {"a": ((50, 250),), "b": ((2, 6),), "c": ((100, 500),)},
        misordered=(("+", "a", "c"), ("*", 0, "b")),  # buying c per batch as well
        whole_prompt=True,
    ),
)

#: Problem forms that train/test never contain (each template is a whole prompt).
OOD_DIVISION_SHAPES = (
    Shape(
        "division",
        "Divide {a} by {b}.",
        (("/", "a", "b"),),
        {"b": ((2, 19),), "q": ((3, 60),)},
        derive=lambda f: {"a": f["b"] * f["q"]},
        whole_prompt=True,
    ),
    Shape(
        "division",
        "{name} shares {a} stickers equally among {b} friends. How many stickers does each friend get?",
        (("/", "a", "b"),),
        {"b": ((2, 12),), "q": ((2, 30),)},
        derive=lambda f: {"a": f["b"] * f["q"]},
        whole_prompt=True,
    ),
    Shape(
        "division",
        "How many boxes of {b} are needed to pack exactly {a} eggs?",
        (("/", "a", "b"),),
        {"b": ((6, 24),), "q": ((2, 40),)},
        derive=lambda f: {"a": f["b"] * f["q"]},
        whole_prompt=True,
    ),
)


def _percent_fields(f: Mapping[str, int]) -> Mapping[str, int]:
    """A whole ``n`` such that ``p`` percent of it is a whole number."""
    p = (5, 10, 15, 20, 25, 30, 40, 50, 60, 75)[f["pi"] % 10]
    step = 100 // math.gcd(p, 100)
    return {"p": p, "n": step * max(1, f["k"] * 4 // step)}


OOD_PERCENT_SHAPES = (
    Shape(
        "percent",
        "Find {p}% of {n}.",
        (("*", "n", "p"), ("/", 0, "hundred")),
        {"pi": ((0, 9),), "k": ((5, 100),)},
        derive=_percent_fields,
        constants={"hundred": 100},
        whole_prompt=True,
    ),
    Shape(
        "percent",
        "How much is {p} percent of {n}?",
        (("*", "n", "p"), ("/", 0, "hundred")),
        {"pi": ((0, 9),), "k": ((5, 100),)},
        derive=_percent_fields,
        constants={"hundred": 100},
        whole_prompt=True,
    ),
    Shape(
        "percent",
        "A jacket costs {n} dollars and is on sale for {p}% off. How many dollars does it cost on sale?",
        (("*", "n", "p"), ("/", 0, "hundred"), ("-", "n", 1)),
        {"pi": ((0, 9),), "k": ((5, 100),)},
        derive=_percent_fields,
        constants={"hundred": 100},
        # answering with the discount instead of the sale price
        misordered=(("*", "n", "p"), ("/", 0, "hundred")),
        misordered_name="skipped_step",
        whole_prompt=True,
    ),
)

OOD_EQUATION_SHAPES = (
    Shape("equation", "Solve for x: x + {a} = {b}.", (("-", "b", "a"),), {"a": ((5, 99),), "b": ((20, 250),)}, whole_prompt=True),
    Shape("equation", "If x - {a} = {b}, what is x?", (("+", "b", "a"),), {"a": ((5, 99),), "b": ((5, 150),)}, whole_prompt=True),
    Shape(
        "equation",
        "{a} times a number is {b}. What is the number?",
        (("/", "b", "a"),),
        {"a": ((2, 12),), "q": ((2, 40),)},
        derive=lambda f: {"b": f["a"] * f["q"]},
        whole_prompt=True,
    ),
)

#: The ood split's shapes by kind; every kind is drawn equally often.
OOD_SHAPES_BY_KIND: dict[str, tuple[Shape, ...]] = {
    "add": SINGLE_SHAPES[:1],
    "sub": SINGLE_SHAPES[1:2],
    "mul": SINGLE_SHAPES[2:],
    "two_step": OOD_TWO_STEP_SHAPES,
    "three_step": OOD_THREE_STEP_SHAPES,
    "word": OOD_WORD_SHAPES,
    "division": OOD_DIVISION_SHAPES,
    "percent": OOD_PERCENT_SHAPES,
    "equation": OOD_EQUATION_SHAPES,
}
OOD_KINDS: tuple[str, ...] = tuple(OOD_SHAPES_BY_KIND)
#: Problem forms of the ood split that train and test never contain.
OOD_ONLY_KINDS = ("division", "equation", "percent")
OOD_WHOLE_PROMPT_SHAPES = tuple(
    shape for shapes in OOD_SHAPES_BY_KIND.values() for shape in shapes if shape.whole_prompt
)


# -- solving ------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One executed step of a solution: ``left op right = result``."""

    left: int
    op: str
    right: int
    result: int

    def render(self, symbols: Mapping[str, str] | None = None) -> str:
        op = (symbols or {}).get(self.op, self.op)
        return f"{self.left} {op} {self.right} = {self.result}."


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
    """Evaluates integer expressions with + - * (also × and x), / (also ÷; exact) and parentheses."""

    _TOKEN = re.compile(r"\s*(\d+|[-+*×x()/÷])")

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
        while self._peek() in ("*", "×", "x", "/", "÷"):
            if self._take() in ("/", "÷"):
                value = exact_division(value, self._factor())  # type: ignore[assignment,arg-type]
            else:
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


_OOD_EXPRESSION_CHARS = r"[\d\s+\-*×x()/÷]+?"
#: Expression prompts of the ood split (and the train/test openings with ÷ or /).
_OOD_EXPRESSION_PROMPTS = (
    re.compile(
        r"(?:what is(?: the value of)?|calculate|compute|evaluate|work out|find the value of|determine)\s+"
        rf"(?P<expr>{_OOD_EXPRESSION_CHARS})\s*[?.!]?",
        re.IGNORECASE,
    ),
    re.compile(rf"(?P<expr>{_OOD_EXPRESSION_CHARS})\s+equals what\?", re.IGNORECASE),
    re.compile(rf"tell me what\s+(?P<expr>{_OOD_EXPRESSION_CHARS})\s+comes to[?.!]?", re.IGNORECASE),
)


def solve_prompt(prompt: str) -> int | Fraction:
    """The correct answer to a prompt of this task, recomputed from its text.

    The train/test templates are tried first, exactly as before the ood split existed; then the
    ood split's word problems, stated problems (division, percentages, equations) and wordings."""
    text = prompt.strip()
    for shape in WORD_SHAPES:
        match = shape.regex.fullmatch(text)
        if match:
            fields = {key: int(value) for key, value in match.groupdict().items() if key != "name"}
            return execute(shape.steps, fields)[-1].result
    match = _EXPRESSION_PROMPT.fullmatch(text)
    if match:
        return _ExpressionParser(match.group("expr")).evaluate()
    for shape in OOD_WHOLE_PROMPT_SHAPES:
        match = shape.regex.fullmatch(text)
        if match:
            return shape.solve({key: int(value) for key, value in match.groupdict().items() if key != "name"})
    for pattern in _OOD_EXPRESSION_PROMPTS:
        match = pattern.fullmatch(text)
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
    """Every step gives an integer; word problems and multi-step expressions stay positive."""
    if not all(isinstance(line.result, int) for line in lines):
        return False  # only a division can leave the integers
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


def sample_ood_problem(rng: random.Random, kind: str) -> Problem:
    """Draw a problem of the ood split of ``kind``, written with the ood wordings and symbols."""
    shape = rng.choice(OOD_SHAPES_BY_KIND[kind])
    while True:
        drawn = _sample_fields(rng, shape)
        fields = {**shape.constants, **drawn, **(shape.derive(drawn) if shape.derive else {})}
        solution = execute(shape.steps, fields)
        if _is_plausible(solution, shape):
            break
    if shape.whole_prompt:
        prompt = shape.template.format(name=rng.choice(OOD_NAMES), **fields)
    else:
        expression = shape.template.format(**fields)
        if rng.random() < 0.5:
            expression = expression.replace("*", OOD_SYMBOLS["*"])
        prompt = rng.choice(OOD_EXPRESSION_PROMPTS).format(expr=expression)
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
        return shape.misordered_name, execute(shape.misordered, fields)  # type: ignore[arg-type]
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


def render(lines: list[Line], worked: bool, symbols: Mapping[str, str] | None = None) -> str:
    """A response: the final answer, after the worked steps if ``worked``."""
    conclusion = f"The answer is {lines[-1].result}."
    if not worked:
        return conclusion
    return " ".join([*(line.render(symbols) for line in lines), conclusion])


class ArithmeticTask(Task):
    """Integer arithmetic: single operations, multi-step expressions and word problems."""

    name = "arithmetic"
    ood_kinds = OOD_KINDS

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

    def sample_ood(self, rng: random.Random, kind: str) -> Example:
        problem = sample_ood_problem(rng, kind)
        worked = rng.random() < 0.5
        mistake, wrong_lines = wrong_solution(rng, problem)
        chosen = render(problem.solution, worked, OOD_SYMBOLS)
        return Example(
            prompt=problem.prompt,
            chosen=chosen,
            rejected=render(wrong_lines, worked, OOD_SYMBOLS),
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
