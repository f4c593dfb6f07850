"""Load preference pairs or prompts from a built-in task, a local file or a Hugging Face dataset.

Every row is validated before any training starts; an error names the source, the row number
(the line number for jsonl) and the field.

Splits. A built-in task generates its own train/test splits and a Hugging Face dataset has its
own; so does a `.json` file holding `{"train": [...], "test": [...]}`. A file without splits
(jsonl, csv, parquet, a JSON list) is split here, so that a recipe's
`load_preference_pairs(config.data, config.eval_split, ...)` never evaluates on training rows:

- with `eval_data` set, the evaluation split is that file (all its rows) and training gets every row
  of `data`;
- otherwise a deterministic `eval_fraction` of the file's prompts is held out (shuffled with the
  seed, i.e. the recipe's `data_seed`): all rows of one prompt land on the same side, so training
  and evaluation share no row and no prompt. The split is announced with its size. A run that
  evaluates nothing (num_eval=0) trains on every row.

`configure_splits` records a run's settings for its `data` (the `TrainConfig` does it when built);
without it a file gets the defaults (train/test, 10% held out). Split `"all"` (`ALL_ROWS`) reads
every row of a file, as `prefrl eval` does by default.
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from prefrl.data.records import PreferencePair, PromptRecord, RowError, parse_preference_row, parse_prompt_row
from prefrl.data.tasks import get_task, is_task
from prefrl.errors import DataError

R = TypeVar("R")
FILE_FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
DEFAULT_TASK_ROWS = 1000
ALL_ROWS = "all"


@dataclass(frozen=True)
class SplitSettings:
    """How a file without splits is divided into a run's training and evaluation rows."""

    train_split: str = "train"
    eval_split: str = "test"
    eval_data: str = ""
    eval_fraction: float = 0.1
    evaluates: bool = True  # a run that evaluates nothing (num_eval=0) holds nothing out


_SPLITS: dict[str, SplitSettings] = {}  # by source (a file's real path), set by configure_splits
_ANNOUNCED: set[tuple] = set()


def _as_path(source: str) -> Path | None:
    """The local path `source` names, if it names one (an existing path or a data-file suffix)."""
    if not isinstance(source, str) or not source or is_task(source):
        return None
    try:
        path = Path(source).expanduser()
        return path if path.suffix.lower() in FILE_FORMATS or path.exists() else None
    except (ValueError, OSError, RuntimeError):  # a NUL byte, a name too long, ~user unknown
        return None


def _source_key(source: str) -> str:
    path = _as_path(source)
    return os.path.realpath(path) if path is not None else source


def configure_splits(
    data: str, train_split: str = "train", eval_split: str = "test", *, eval_data: str = "", eval_fraction: float = 0.1, evaluates: bool = True
) -> None:
    """Record a run's split settings for `data` (the latest settings for a source win)."""
    _SPLITS[_source_key(data)] = SplitSettings(train_split, eval_split, eval_data, eval_fraction, evaluates)


def split_settings(source: str) -> SplitSettings:
    return _SPLITS.get(_source_key(source), SplitSettings())


def is_file_source(source: str) -> bool:
    """True when `source` names a local data file (not a built-in task or a dataset name)."""
    return _as_path(source) is not None


# ---- raw rows ---------------------------------------------------------------------------------
def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with path.open(encoding="utf-8-sig") as handle:  # -sig: a byte-order mark is not part of line 1
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                text = line.rstrip("\r\n")  # else an error at the end of the line reads "line 2, column 1"
                try:
                    yield line_number, json.loads(text)
                except json.JSONDecodeError as error:
                    raise DataError(f"{path}: line {line_number}: invalid JSON ({error.msg} at column {error.colno})") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _json_content(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: invalid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None


def _has_own_splits(content: Any) -> bool:
    return isinstance(content, dict) and bool(content) and all(isinstance(v, list) for v in content.values())


def _json_rows(path: Path, content: Any, split: str | None) -> Iterator[tuple[int, Any]]:
    if _has_own_splits(content):  # {"train": [...], "test": [...]}
        if split == ALL_ROWS or split is None:
            content = [row for rows in content.values() for row in rows]
        elif split in content:
            content = content[split]
        else:
            raise DataError(f"{path}: has no split {split!r} (its splits: {', '.join(map(str, content))})")
    if not isinstance(content, list):
        raise DataError(f"{path}: expected a JSON list of rows (or an object mapping split names to lists)")
    yield from enumerate(content, start=1)


def _datasets_rows(loader_args: tuple, loader_kwargs: dict, label: str) -> Iterator[tuple[int, Any]]:
    import datasets

    datasets.disable_progress_bars()
    try:
        dataset = datasets.load_dataset(*loader_args, **loader_kwargs)
    except Exception as error:  # datasets raises many types; the user needs the message, not the type
        raise DataError(f"{label}: could not load the dataset ({type(error).__name__}: {error})") from None
    for index, row in enumerate(dataset, start=1):
        yield index, dict(row)


def _checked_path(source: str) -> tuple[Path, str]:
    path = _as_path(source)
    assert path is not None
    if path.is_dir():
        raise DataError(
            f"data {source!r} is a directory; expected a data file ({', '.join(FILE_FORMATS)}), a built-in task (arithmetic, constraints) or a dataset name"
        )
    if not path.is_file():
        raise DataError(f"data file {source!r} does not exist")
    kind = FILE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"data file {source!r}: unknown format {path.suffix!r} (use {', '.join(FILE_FORMATS)})")
    return path, kind


def _file_rows(source: str, split: str | None) -> tuple[str, Iterator[tuple[int, Any]], bool]:
    """(label, rows, has its own splits) of a local file; `split` only matters for a split JSON object."""
    path, kind = _checked_path(source)
    if kind == "jsonl":
        return str(path), _jsonl_rows(path), False
    if kind == "json":
        content = _json_content(path)
        return str(path), _json_rows(path, content, split), _has_own_splits(content)
    return str(path), _datasets_rows((kind,), {"data_files": str(path), "split": "train"}, str(path)), False


def iter_rows(source: str, split: str | None = "train", seed: int = 0, limit: int = 0, prompts_only: bool = False) -> tuple[str, Iterator[tuple[int, Any]]]:
    """(label, iterator of (row number, raw row)) for any supported source, every row of a file
    (or of its `split` when the file has its own splits)."""
    if is_task(source):
        split = split or "train"
        task = get_task(source)
        count = limit or DEFAULT_TASK_ROWS
        try:
            rows = task.prompts(count, split=split, seed=seed) if prompts_only else task.generate(count, split=split, seed=seed)
        except ValueError as error:
            raise DataError(f"task {source!r}: {error}") from None
        return f"task {source!r} ({split})", iter(enumerate(rows, start=1))
    if _as_path(source) is not None:
        label, rows, _ = _file_rows(source, split)
        return label, rows
    split = split or "train"
    if source.count("/") == 1 or source.replace("-", "").replace("_", "").isalnum():
        return f"dataset {source!r} ({split})", _datasets_rows((source,), {"split": split}, f"dataset {source!r}")
    raise DataError(f"data source {source!r} is neither a built-in task (arithmetic, constraints), an existing file, nor a dataset name")


# ---- parsing and splitting ----------------------------------------------------------------------
def _parse_rows(label: str, rows: Iterator[tuple[int, Any]], parse: Callable[[Any], R], limit: int = 0) -> list[R]:
    records: list[R] = []
    for row_number, row in rows:
        try:
            records.append(parse(row))
        except RowError as error:
            raise DataError(f"{label}: row {row_number}: {error}") from None
        if limit and len(records) >= limit:
            break
    return records


def _prompt_key(record: Any) -> str:
    return json.dumps(record.prompt, sort_keys=True, ensure_ascii=False)


def held_out_rows(prompt_keys: list[str], fraction: float, seed: int) -> set[int]:
    """Indices of the rows held out for evaluation: whole prompts, shuffled with `seed`, until at
    least round(fraction × rows) rows (one at least, when fraction > 0) are held out, always
    leaving one prompt for training. Deterministic in (prompt order, fraction, seed)."""
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(prompt_keys):
        groups.setdefault(key, []).append(index)
    if fraction <= 0 or len(groups) < 2:
        return set()
    order = list(groups)
    random.Random(seed).shuffle(order)
    target = max(1, round(fraction * len(prompt_keys)))
    held: set[int] = set()
    for key in order[:-1]:  # the last prompt always trains
        if len(held) >= target:
            break
        held.update(groups[key])
    return held


def _announce(label: str, settings: SplitSettings, seed: int, total: int, held: int, prompts: tuple[int, int]) -> None:
    key = (label, settings, seed, total)
    if key in _ANNOUNCED or os.environ.get("RANK", "0") != "0":
        return
    _ANNOUNCED.add(key)
    print(
        f"[data] {label}: {held} of {total} rows ({prompts[0]} of {prompts[1]} prompts) held out for evaluation "
        f"(eval_fraction={settings.eval_fraction}, data_seed={seed}); training on the other {total - held}",
        file=sys.stderr,
    )


def _load(source: str, parse: Callable[[Any], R], split: str | None, seed: int, limit: int, prompts_only: bool) -> list[R]:
    settings = split_settings(source)
    evaluating = split is not None and split == settings.eval_split and split != settings.train_split
    if settings.eval_data and evaluating:
        # Evaluation rows come from eval_data: all of a file's rows, or a task's / dataset's eval split.
        return _load(settings.eval_data, parse, ALL_ROWS if is_file_source(settings.eval_data) else split, seed, limit, prompts_only)
    if not is_file_source(source):
        label, rows = iter_rows(source, split, seed, limit, prompts_only)
        records = _parse_rows(label, rows, parse, limit)
        if not records:
            raise DataError(f"{label}: the dataset is empty")
        return records

    label, rows, own_splits = _file_rows(source, split)
    trains_on_all = split == settings.train_split and (bool(settings.eval_data) or not settings.evaluates)
    whole_file = own_splits or split in (None, ALL_ROWS) or trains_on_all
    if whole_file:
        records = _parse_rows(label, rows, parse, limit)
        if not records:
            raise DataError(f"{label}: the dataset is empty")
        return records
    if split not in (settings.train_split, settings.eval_split):
        raise DataError(
            f"{label}: a file without splits has no split {split!r}; use {settings.train_split!r} (training rows), "
            f"{settings.eval_split!r} (the rows held out by eval_fraction, or eval_data) or {ALL_ROWS!r}"
        )
    records = _parse_rows(label, rows, parse)  # every row validated, whichever side is wanted
    if not records:
        raise DataError(f"{label}: the dataset is empty")
    keys = [_prompt_key(r) for r in records]
    held = held_out_rows(keys, settings.eval_fraction, seed)
    if evaluating:
        if not held:
            why = (
                "eval_fraction=0"
                if settings.eval_fraction <= 0
                else f"all {len(records)} rows share one prompt"
                if len(set(keys)) < 2
                else "no prompt could be spared"
            )
            raise DataError(f"{label}: no rows held out for evaluation ({why}); give eval_data=FILE, or num_eval=0 to skip the evaluation")
        chosen = [r for i, r in enumerate(records) if i in held]
    else:
        chosen = [r for i, r in enumerate(records) if i not in held]
    if held:
        _announce(label, settings, seed, len(records), len(held), (len({keys[i] for i in held}), len(set(keys))))
    return chosen[:limit] if limit else chosen


def load_preference_pairs(source: str, split: str | None = None, seed: int = 0, limit: int = 0) -> list[PreferencePair]:
    """Validated preference pairs of `source`'s `split` (the first `limit` when limit > 0).

    split None: a task's or dataset's "train" split, every row of a file. For a file without
    splits, the run's train/eval split names select its training or held-out rows (module doc)."""
    return _load(source, parse_preference_row, split, seed, limit, prompts_only=False)


def load_prompts(source: str, split: str | None = None, seed: int = 0, limit: int = 0) -> list[PromptRecord]:
    """Validated prompts of `source` (preference rows give their prompt); splits as in load_preference_pairs."""
    return _load(source, parse_prompt_row, split, seed, limit, prompts_only=True)
