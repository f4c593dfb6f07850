"""Load preference pairs or prompts from a built-in task, a local file or a Hugging Face dataset.

Every row is validated before any training starts; an error names the source, the row number
(the line number for jsonl) and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from prefrl.data.records import PreferencePair, PromptRecord, RowError, parse_preference_row, parse_prompt_row
from prefrl.data.tasks import get_task, is_task
from prefrl.errors import DataError

R = TypeVar("R")
FILE_FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
DEFAULT_TASK_ROWS = 1000


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {line_number}: invalid JSON ({error.msg} at column {error.colno})") from None


def _json_rows(path: Path, split: str) -> Iterator[tuple[int, Any]]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: invalid JSON ({error.msg} at line {error.lineno})") from None
    if isinstance(content, dict) and split in content and isinstance(content[split], list):
        content = content[split]  # {"train": [...], "test": [...]}
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


def iter_rows(source: str, split: str = "train", seed: int = 0, limit: int = 0, prompts_only: bool = False) -> tuple[str, Iterator[tuple[int, Any]]]:
    """(label, iterator of (row number, raw row)) for any supported source."""
    if is_task(source):
        task = get_task(source)
        count = limit or DEFAULT_TASK_ROWS
        try:
            rows = task.prompts(count, split=split, seed=seed) if prompts_only else task.generate(count, split=split, seed=seed)
        except ValueError as error:
            raise DataError(f"task {source!r}: {error}") from None
        return f"task {source!r} ({split})", iter(enumerate(rows, start=1))
    path = Path(source).expanduser()
    if path.suffix.lower() in FILE_FORMATS or path.exists():
        if not path.is_file():
            raise DataError(f"data file {source!r} does not exist")
        kind = FILE_FORMATS.get(path.suffix.lower())
        if kind == "jsonl":
            return str(path), _jsonl_rows(path)
        if kind == "json":
            return str(path), _json_rows(path, split)
        if kind in ("parquet", "csv"):
            return str(path), _datasets_rows((kind,), {"data_files": str(path), "split": "train"}, str(path))
        raise DataError(f"data file {source!r}: unknown format {path.suffix!r} (use {', '.join(FILE_FORMATS)})")
    if source.count("/") == 1 or source.replace("-", "").replace("_", "").isalnum():
        return f"dataset {source!r} ({split})", _datasets_rows((source,), {"split": split}, f"dataset {source!r}")
    raise DataError(f"data source {source!r} is neither a built-in task (arithmetic, constraints), an existing file, nor a dataset name")


def _load(source: str, parse: Callable[[Any], R], split: str, seed: int, limit: int, prompts_only: bool) -> list[R]:
    label, rows = iter_rows(source, split, seed, limit, prompts_only)
    records: list[R] = []
    for row_number, row in rows:
        try:
            records.append(parse(row))
        except RowError as error:
            raise DataError(f"{label}: row {row_number}: {error}") from None
        if limit and len(records) >= limit:
            break
    if not records:
        raise DataError(f"{label}: the dataset is empty")
    return records


def load_preference_pairs(source: str, split: str = "train", seed: int = 0, limit: int = 0) -> list[PreferencePair]:
    """All rows of `source` as validated preference pairs (the first `limit` when limit > 0)."""
    return _load(source, parse_preference_row, split, seed, limit, prompts_only=False)


def load_prompts(source: str, split: str = "train", seed: int = 0, limit: int = 0) -> list[PromptRecord]:
    """All rows of `source` as validated prompts (preference rows give their prompt)."""
    return _load(source, parse_prompt_row, split, seed, limit, prompts_only=True)
