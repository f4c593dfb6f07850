"""Bad input, systematically: generated malformed rows, configs and command lines end in a clear
prefrl error (PrefrlError, or exit code 2 with a message) — never a traceback, never a run directory
left behind. Fast: tiny inputs, few examples, no model is ever loaded (validation comes first)."""

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from prefrl.algorithms import RECIPES  # noqa: E402
from prefrl.algorithms.grpo import GRPOConfig  # noqa: E402
from prefrl.algorithms.reward import RewardConfig  # noqa: E402
from prefrl.cli import main  # noqa: E402
from prefrl.config import TRL_ALIASES, config_fields, load_config  # noqa: E402
from prefrl.data.loaders import load_preference_pairs, load_prompts  # noqa: E402
from prefrl.data.records import PreferencePair, PromptRecord  # noqa: E402
from prefrl.errors import ConfigError, DataError  # noqa: E402

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# ---- strategies ---------------------------------------------------------------------------------------
FIELD_NAMES = ["prompt", "chosen", "rejected", "margin", "reference", "role", "content", "extra"]
scalars = st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats() | st.text(max_size=6)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=4), max_leaves=8
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "robot", 1, None]), "content": st.text(max_size=5) | st.integers() | st.none()}
    ),
    max_size=3,
)
texts = st.text(max_size=8) | messages | json_values
rows = json_values | st.fixed_dictionaries({}, optional={name: texts for name in ("prompt", "chosen", "rejected", "reference")} | {"margin": json_values})
# A raw line: a JSON row, or text that may not be JSON at all.
lines = rows.map(json.dumps) | st.text(alphabet=st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=12)
MALFORMED = ['{"prompt": "q", "chosen": "a"', '{"prompt": "q", "chosen": 1, "rejected": "b"}', "[1, 2]", '{"chosen": "x", "rejected": "y"}']


def _write(directory: Path, content: list[str], suffix: str = ".jsonl") -> Path:
    path = directory / f"data{suffix}"
    path.write_text("".join(line + "\n" for line in content), encoding="utf-8")
    return path


# ---- data rows --------------------------------------------------------------------------------------
@FAST
@given(content=st.lists(lines, max_size=5))
def test_any_jsonl_content_loads_or_fails_with_a_data_error_naming_the_file(content):
    with tempfile.TemporaryDirectory() as directory:
        path = _write(Path(directory), content)
        for load, kind in ((load_preference_pairs, PreferencePair), (load_prompts, PromptRecord)):
            try:
                records = load(str(path))
            except DataError as error:
                assert str(path) in str(error) and len(str(error)) > len(str(path)) + 5
            else:
                assert records and all(isinstance(r, kind) for r in records)


@FAST
@given(content=st.lists(rows, max_size=4), split=st.sampled_from(["train", "test", "all", None]))
def test_any_json_list_loads_or_fails_with_a_data_error(content, split):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.json"
        path.write_text(json.dumps(content))
        try:
            pairs = load_preference_pairs(str(path), split)
        except DataError as error:
            assert str(path) in str(error)
        else:
            assert all(isinstance(p, PreferencePair) for p in pairs)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(content=st.lists(lines, max_size=3), bad=st.sampled_from(MALFORMED), where=st.integers(0, 3), recipe=st.sampled_from(["reward", "dpo"]))
def test_training_on_malformed_rows_exits_2_before_any_run_directory(content, bad, where, recipe):
    with tempfile.TemporaryDirectory() as directory:
        content = list(content)
        content.insert(min(where, len(content)), bad)  # at least one malformed row: the run must not start
        data = _write(Path(directory), content)
        run = Path(directory) / "run"
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["train", recipe, "model=tiny", f"data={data}", f"output_dir={run}", "max_steps=1", "progress=false", "bf16=false"])
        assert code == 2
        assert "prefrl: error:" in stderr.getvalue() and str(data) in stderr.getvalue() and "Traceback" not in stderr.getvalue()
        assert not run.exists()


# ---- config keys and values -----------------------------------------------------------------------------
keys = st.sampled_from(sorted(config_fields(GRPOConfig)) + sorted(TRL_ALIASES) + ["per_device_train_batch_size", "bogus", ""]) | st.text(max_size=6)
values = st.sampled_from(["", "0", "-1", "1e400", "nan", "inf", "true", "maybe", "3.5", "1e-5", "cosine", "a,b", "=", "None"]) | st.text(max_size=6)


@FAST
@given(overrides=st.lists(st.tuples(keys, values), max_size=4), cls=st.sampled_from([RewardConfig, GRPOConfig]))
def test_any_overrides_give_a_config_or_a_config_error(overrides, cls):
    try:
        config = load_config(cls, None, [f"{k}={v}" for k, v in overrides])
    except ConfigError as error:
        assert str(error)
    else:
        assert isinstance(config, cls)


@FAST
@given(mapping=st.dictionaries(keys, json_values, max_size=4) | json_values, raw=st.booleans())
def test_any_yaml_file_gives_a_config_or_a_config_error(mapping, raw):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.yaml"
        path.write_text(json.dumps(mapping) if raw else yaml.safe_dump(mapping))
        try:
            config = load_config(RewardConfig, str(path))
        except ConfigError as error:
            assert str(error)
        else:
            assert isinstance(config, RewardConfig)


# ---- command lines --------------------------------------------------------------------------------------
tokens = (
    st.sampled_from(
        ["reward", "grpo", "dpo", "--config", "--config=", "--json", "--help", "--lr", "--lr=1", "lr=2", "--resume", "false", "--", "-", "-x", "=", "--=", "--beta", "0.1", "--max-steps", "abc", "-1"]
    )
    | st.builds(lambda k, v: f"{k}={v}", keys, values)
    | st.text(max_size=5)
)


@FAST
@given(argv=st.lists(tokens, max_size=6))
def test_any_train_command_line_exits_0_or_2_with_a_message(argv, monkeypatch):
    calls = []
    for name, (cls, _) in list(RECIPES.items()):
        monkeypatch.setitem(RECIPES, name, (cls, lambda config: calls.append(config) or {}))  # no training, no model
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["train", *argv])
    assert code in (0, 2)
    if code == 2:
        assert "prefrl: error: " in stderr.getvalue() and "Traceback" not in stderr.getvalue()
    else:
        assert calls or stdout.getvalue()  # a run was configured, or help was printed
