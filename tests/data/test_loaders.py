import json

import pytest

from prefrl.data.loaders import load_preference_pairs, load_prompts
from prefrl.errors import DataError
from tests.conftest import write_jsonl

GOOD = {"prompt": "q", "chosen": "a", "rejected": "b"}


def test_jsonl_json_csv_parquet_load_the_same_rows(tmp_path):
    rows = [dict(GOOD, chosen=f"a{i}") for i in range(3)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    (tmp_path / "d.json").write_text(json.dumps(rows))
    import datasets

    datasets.Dataset.from_list(rows).to_csv(str(tmp_path / "d.csv"))
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "d.parquet"))
    for name in ("d.jsonl", "d.json", "d.csv", "d.parquet"):
        pairs = load_preference_pairs(str(tmp_path / name))
        assert [p.chosen for p in pairs] == ["a0", "a1", "a2"], name


def test_malformed_jsonl_row_names_file_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, GOOD, {"prompt": "q", "chosen": "a"}])
    with pytest.raises(DataError) as error:
        load_preference_pairs(str(path))
    assert str(path) in str(error.value) and "row 3" in str(error.value) and "'rejected'" in str(error.value)


def test_invalid_json_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, '{"prompt": "q", "chosen": '])
    with pytest.raises(DataError, match=r"bad.jsonl: line 2: invalid JSON"):
        load_preference_pairs(str(path))


def test_blank_lines_skipped_and_line_numbers_kept(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps({"prompt": "q", "chosen": 1, "rejected": "b"}) + "\n")
    with pytest.raises(DataError, match="row 3"):
        load_preference_pairs(str(path))


def test_empty_and_missing(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="empty"):
        load_preference_pairs(str(tmp_path / "empty.jsonl"))
    with pytest.raises(DataError, match="does not exist"):
        load_preference_pairs(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DataError, match="neither a built-in task"):
        load_preference_pairs("./no/such/thing")


def test_builtin_task_and_limit():
    pairs = load_preference_pairs("arithmetic", "test", seed=0, limit=5)
    assert len(pairs) == 5 and pairs[0].is_conversational
    assert len(load_prompts("constraints", "train", limit=4)) == 4
