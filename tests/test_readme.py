"""Every `prefrl train / eval / data` command in README.md's bash blocks runs (rc 0) on the tiny
model with a one-step budget, in README order (later commands read the runs earlier ones write, as
a reader would run them), and the curl bodies of the serve section get 200 from the real server.

A command is rewritten only in its budget: model=tiny, max_steps=1 and small batches, generations,
evaluation sets (keys a recipe has; the others would be refused), and tiny for the win rate's
baseline (the README's is SmolLM2). `prefrl train RECIPE ... k=v`
continues the README's last full command of that recipe with k=v (options separated by `|` are
alternatives: each runs). Left out, with the reason: commands that need a network (hf:NAME), an
illustrative module (my_package), a GPU or several processes (accelerate, torchrun: their own
tests), a model no earlier command trains (runs/trl-rm: tests/integrations covers that form),
`resume=true` / `overwrite=true` (tests/engine covers them), and `prefrl serve`, which runs until
interrupted (its curl requests are sent to the same kind of server run in a thread)."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import threading
import urllib.request
from pathlib import Path

import pytest

from prefrl.algorithms import RECIPES
from prefrl.cli import main
from prefrl.engine.metrics import read_metrics

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SKIPPED = ("hf:", "my_package.", "runs/trl-rm", "prefrl serve", "--help", "resume=true", "overwrite=true")
BUDGET = {"model": "tiny", "max_steps": "1", "batch_size": "2", "num_eval": "2", "eval_batch_size": "2", "num_train": "8",
          "num_generations": "2", "max_new_tokens": "6", "iterations": "1", "progress": "false", "n_thoughts": "1"}
CLI_BUDGET = {"--num": "2", "--n": "8", "--max-new-tokens": "6", "--n-thoughts": "1", "--baseline": "tiny"}


def bash_lines(markdown: str) -> list[str]:
    """The commands of the ```bash blocks, comments stripped, `\\`-continued lines joined."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split(" # ", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def with_budget(argv: list[str]) -> list[str]:
    """`train RECIPE k=v ...`: the small-budget keys the recipe has, replacing the README's values."""
    if argv[0] != "train":
        options = list(argv)
        for index, word in enumerate(options[:-1]):
            if word in CLI_BUDGET:
                options[index + 1] = CLI_BUDGET[word]
        if argv[0] == "eval" and "--num" not in options:  # a built-in task generates 100-200 rows
            options += ["--num", CLI_BUDGET["--num"]]
        return options
    fields = {f.name for f in dataclasses.fields(RECIPES[argv[1]][0])}
    words, dashed = dashed_with_budget(argv[2:])
    keys = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    keys.setdefault("data", "arithmetic")
    keys.update({key: value for key, value in BUDGET.items() if key in fields and key not in dashed})
    if "output_dir" not in dashed:
        keys.setdefault("output_dir", f"runs/readme-{argv[1]}-{len(keys)}")
    keys["overwrite"] = "true"  # the same output_dir may be used by two README lines
    flags = [word for word in words if "=" not in word or word.startswith("-")]
    return ["train", argv[1], *flags, *(f"{key}={value}" for key, value in keys.items())]


def dashed_with_budget(words: list[str]) -> tuple[list[str], set[str]]:
    """`--key value` / `--key=value` options (TRL's style) with budget values; the keys they set."""
    out, dashed, index = [], set(), 0
    while index < len(words):
        word = words[index]
        if word.startswith("--") and word != "--config":
            name, _, value = word[2:].partition("=")
            key = name.replace("-", "_")
            dashed.add(key)
            if not value:  # the value is the next word
                index += 1
                value = words[index]
            out.append(f"--{name}={BUDGET.get(key, value)}")
        else:
            out.append(word)
            if word == "--config":
                index += 1
                out.append(words[index])
        index += 1
    return out, dashed


def readme_commands(served_url: str) -> list[list[str]]:
    commands, last_full = [], {}
    for line in bash_lines(README.read_text()):
        if not line.startswith("prefrl ") or any(marker in line for marker in SKIPPED):
            continue
        line = line.replace("http://localhost:5000/get_reward", served_url)
        words = shlex.split(line)[1:]
        if words[0] == "train" and "..." in words:
            base = last_full[words[1]]
            extra = [w for w in words[2:] if w != "..."]
            alternatives = [w for w in extra if w != "|"] if "|" in extra else [" ".join(extra)]
            for alternative in alternatives:
                commands.append(with_budget(base + alternative.split()))
            continue
        if words[0] == "train":
            last_full[words[1]] = [w for w in words if not w.startswith("output_dir=")]
        alternatives = [w for w in words if "|" in w and "=" in w]
        if alternatives:  # loss_type=sigmoid|ipo|sppo_hard: each
            (word,) = alternatives
            key, values = word.split("=", 1)
            commands += [with_budget([f"{key}={value}" if w == word else w for w in words]) for value in values.split("|")]
        else:
            commands.append(with_budget(words))
    return commands


@pytest.fixture
def readme_workdir(tmp_path, monkeypatch):
    """A fresh directory holding the repository's examples/ and configs/, and the data files the
    README's commands name (my_pairs.jsonl, my_test.jsonl: exported arithmetic pairs)."""
    for name in ("examples", "configs"):
        (tmp_path / name).symlink_to(REPO / name)
    monkeypatch.chdir(tmp_path)
    assert main(["data", "export", "arithmetic", "--n", "24", "--out", "my_pairs.jsonl"]) == 0
    assert main(["data", "export", "arithmetic", "--n", "6", "--split", "test", "--out", "my_test.jsonl"]) == 0
    return tmp_path


@pytest.fixture
def gold_server():
    from prefrl.preference import GoldJudge
    from prefrl.serve import PreferenceServer

    server = PreferenceServer(GoldJudge("arithmetic"), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_readmes_commands_run_on_a_small_budget(readme_workdir, gold_server, capsys):
    commands = readme_commands(f"{gold_server.url}/get_reward")
    recipes = {argv[1] for argv in commands if argv[0] == "train"}
    assert recipes == set(RECIPES)  # every recipe appears in the README and was run
    failed = []
    for argv in commands:
        code = main(argv)
        if code != 0:
            failed.append((" ".join(argv), code, capsys.readouterr().err[-400:]))
        elif argv[0] == "train":  # it trained: its run directory logged the one step
            output_dir = next(w.split("=", 1)[1] for w in argv if w.lstrip("-").startswith("output_dir="))
            assert any(m.get("step") == 1 for m in read_metrics(output_dir)), " ".join(argv)
    assert not failed, "\n".join(map(str, failed))


def test_the_serve_sections_curl_requests_are_answered(gold_server):
    section = README.read_text().split("## Serve a preference model", 1)[1].replace("\\\n", " ")
    requests = re.findall(r"curl -s localhost:5000(/\w+)(?: -H '[^']*')?\s+-d '([^']*)'", section)
    assert len(requests) == 3
    for path, body in requests:
        request = urllib.request.Request(gold_server.url + path, data=body.encode(), method="POST")  # curl -d: form content type
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        assert response.status == 200 and set(answer) & {"rewards", "probs"}
    with urllib.request.urlopen(gold_server.url + "/health", timeout=10) as response:
        assert json.loads(response.read())["status"] == "ok"
