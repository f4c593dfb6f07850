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


# ---- honest evaluation splits for files ---------------------------------------------------------------
from prefrl.config import TrainConfig  # noqa: E402
from prefrl.data.loaders import ALL_ROWS, configure_splits, held_out_rows  # noqa: E402


def _pairs_file(path, prompts=40, rows_per_prompt=(1, 2, 3)):
    rows = []
    for i in range(prompts):
        for j in range(rows_per_prompt[i % len(rows_per_prompt)]):
            rows.append({"prompt": f"question {i}", "chosen": f"good {i}.{j}", "rejected": f"bad {i}.{j}"})
    return write_jsonl(path, rows), rows


def _key(pair):
    return (pair.prompt, pair.chosen, pair.rejected)


def test_file_train_and_eval_rows_never_overlap(tmp_path, capsys):
    path, rows = _pairs_file(tmp_path / "pairs.jsonl")
    config = TrainConfig(data=str(path))  # a run's config registers its split settings for its data
    train = load_preference_pairs(config.data, config.train_split, 0, 0)
    evaluation = load_preference_pairs(config.data, config.eval_split, 0, 0)
    assert len(train) + len(evaluation) == len(rows)
    assert not {_key(p) for p in train} & {_key(p) for p in evaluation}
    assert not {p.prompt for p in train} & {p.prompt for p in evaluation}  # whole prompts held out
    assert round(0.1 * len(rows)) <= len(evaluation) <= round(0.1 * len(rows)) + 2
    announced = capsys.readouterr().err
    assert f"{len(evaluation)} of {len(rows)} rows" in announced and "held out for evaluation" in announced
    # prompts (the RL recipes' loader) split the same way
    train_prompts = {p.prompt for p in load_prompts(config.data, "train")}
    eval_prompts = {p.prompt for p in load_prompts(config.data, "test")}
    assert train_prompts == {p.prompt for p in train} and eval_prompts == {p.prompt for p in evaluation}
    # limits take the first rows of each side, never cross
    assert [_key(p) for p in load_preference_pairs(config.data, "test", 0, 3)] == [_key(p) for p in evaluation[:3]]
    assert len(load_preference_pairs(str(path), ALL_ROWS)) == len(rows) == len(load_preference_pairs(str(path)))


def test_held_out_split_is_deterministic_in_the_seed(tmp_path):
    path, _ = _pairs_file(tmp_path / "pairs.jsonl", rows_per_prompt=(1,))
    TrainConfig(data=str(path), eval_fraction=0.25)
    first = [_key(p) for p in load_preference_pairs(str(path), "test", seed=0)]
    assert first == [_key(p) for p in load_preference_pairs(str(path), "test", seed=0)]
    assert len(first) == 10
    assert first != [_key(p) for p in load_preference_pairs(str(path), "test", seed=1)]
    assert held_out_rows(["a", "a", "b"], 0.5, 0) in ({0, 1}, {2})
    assert held_out_rows(["a", "a"], 0.5, 0) == set()  # one prompt: nothing can be held out
    assert held_out_rows(["a", "b", "c"], 0.0, 0) == set()


def test_eval_data_file_is_the_evaluation_split(tmp_path):
    path, rows = _pairs_file(tmp_path / "train.jsonl")
    eval_path = write_jsonl(tmp_path / "test.jsonl", [dict(GOOD, prompt=f"held {i}") for i in range(5)])
    config = TrainConfig(data=str(path), eval_data=str(eval_path))
    assert len(load_preference_pairs(config.data, config.train_split)) == len(rows)
    evaluation = load_preference_pairs(config.data, config.eval_split, 0, 0)
    assert [p.prompt for p in evaluation] == [f"held {i}" for i in range(5)]
    assert [p.prompt for p in load_prompts(config.data, config.eval_split, 0, 2)] == ["held 0", "held 1"]


def test_no_rows_to_hold_out_is_a_clear_error(tmp_path):
    path, _ = _pairs_file(tmp_path / "pairs.jsonl")
    configure_splits(str(path), eval_fraction=0.0)
    assert len(load_preference_pairs(str(path), "train"))
    with pytest.raises(DataError, match=r"no rows held out for evaluation \(eval_fraction=0\).*eval_data"):
        load_preference_pairs(str(path), "test")
    one = write_jsonl(tmp_path / "one.jsonl", [GOOD, GOOD])
    with pytest.raises(DataError, match="share one prompt"):
        load_preference_pairs(str(one), "test")
    with pytest.raises(DataError, match="has no split 'validation'"):
        load_preference_pairs(str(path), "validation")


def test_builtin_tasks_keep_their_own_splits():
    config = TrainConfig(data="arithmetic")
    train = load_preference_pairs(config.data, config.train_split, 0, 20)
    test = load_preference_pairs(config.data, config.eval_split, 0, 20)
    assert len(train) == len(test) == 20 and {p.prompt.__repr__() for p in train} != {p.prompt.__repr__() for p in test}


def test_json_object_with_splits_uses_them(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"train": [GOOD, GOOD], "test": [dict(GOOD, chosen="t")]}))
    assert len(load_preference_pairs(str(path), "train")) == 2
    assert [p.chosen for p in load_preference_pairs(str(path), "test")] == ["t"]
    with pytest.raises(DataError, match=r"has no split 'validation' \(its splits: train, test\)"):
        load_preference_pairs(str(path), "validation")


# ---- small errors ----------------------------------------------------------------------------------
def test_directory_as_data_says_it_is_a_directory(tmp_path):
    with pytest.raises(DataError, match=r"is a directory; expected a data file \(.jsonl"):
        load_preference_pairs(str(tmp_path))


def test_invalid_json_column_is_where_the_line_breaks_off(tmp_path):
    truncated = '{"prompt": "q", "chosen": "a"'  # 29 characters: the error is just past the end
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, truncated])
    with pytest.raises(DataError, match=rf"line 2: invalid JSON \(Expecting ',' delimiter at column {len(truncated) + 1}\)"):
        load_preference_pairs(str(path))
    path = write_jsonl(tmp_path / "mid.jsonl", ['{"prompt": "q" "chosen": "a"}'])
    with pytest.raises(DataError, match=r"line 1: invalid JSON \(Expecting ',' delimiter at column 16\)"):
        load_preference_pairs(str(path))
    (tmp_path / "bad.json").write_text('[{"prompt": "q",\n  "chosen" "a"}]')
    with pytest.raises(DataError, match=r"at line 2, column 12"):
        load_preference_pairs(str(tmp_path / "bad.json"))


def test_byte_order_mark_and_non_utf8(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    assert len(load_preference_pairs(str(path))) == 1
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        load_preference_pairs(str(path))


def test_huge_integer_margin_is_a_row_error(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", ['{"prompt": "q", "chosen": "a", "rejected": "b", "margin": 1' + "0" * 400 + "}"])
    with pytest.raises(DataError, match=r"row 1: field 'margin'"):
        load_preference_pairs(str(path))


def test_a_run_without_evaluation_trains_on_every_row(tmp_path):
    path, rows = _pairs_file(tmp_path / "pairs.jsonl")
    config = TrainConfig(data=str(path), num_eval=0)
    assert len(load_preference_pairs(config.data, config.train_split)) == len(rows)
