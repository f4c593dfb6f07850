"""Reward sources from outside prefrl: functions, Hugging Face classifiers, remote servers; and the
`reward=` key that names them."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch

from prefrl.config import load_config
from prefrl.errors import ConfigError
from prefrl.rewards import FunctionReward, HFRewardModel, PreferenceModelReward, RemoteReward, RewardRows, RewardSourceError, RewardSourceSection, WeightedSum, build_reward_source
from prefrl.rewards.sources import load_function

EXAMPLE = "examples/my_rewards.py"


def section(**keys):
    return RewardSourceSection(**keys)


# --- Python functions (TRL's reward_funcs signature) ---------------------------------------------

def test_a_function_from_a_file_gets_prompts_completions_and_the_rows_columns():
    source = build_reward_source(section(reward=f"{EXAMPLE}:exact_match"), "arithmetic")
    rows = RewardRows(["q1", "q1", "q2"], ["it is 7", "8", "x"], columns={"ground_truth": ["7", "7", None]})
    scores = source.score(rows)
    assert scores[:2].tolist() == [1.0, 0.0] and torch.isnan(scores[2])


def test_chat_prompts_get_completions_as_assistant_messages():
    seen = {}

    def spy(prompts, completions, **columns):
        seen.update(completions=completions, columns=columns)
        return [0.0] * len(completions)

    FunctionReward(spy, "spy").score(RewardRows([[{"role": "user", "content": "hi"}]], ["hello"], columns={"id": [3]}))
    assert seen == {"completions": [[{"role": "assistant", "content": "hello"}]], "columns": {"id": [3]}}


def test_a_module_function_is_found_by_its_dotted_name():
    assert load_function("os.path:basename") is __import__("os").path.basename


def test_a_function_that_returns_the_wrong_length_or_raises_is_named_in_the_error():
    rows = RewardRows(["q", "q"], ["a", "b"])
    with pytest.raises(ConfigError, match=r"reward function short returned 1 rewards for 2 completions"):
        FunctionReward(lambda prompts, completions, **kw: [1.0], "short").score(rows)

    def broken(prompts, completions, **kw):
        raise KeyError("ground_truth")

    with pytest.raises(RewardSourceError, match=r"reward function broken raised KeyError"):
        FunctionReward(broken, "broken").score(rows)


def test_a_missing_function_or_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        load_function(f"{EXAMPLE}:nope")
    with pytest.raises(ConfigError, match="no such file"):
        load_function(f"{tmp_path}/absent.py:f")


def test_several_sources_make_a_weighted_sum():
    source = build_reward_source(section(reward=f"{EXAMPLE}:fmt_reward,gold", reward_weights=[0.5, 1.0]), "arithmetic")
    assert isinstance(source, WeightedSum) and source.weights == [0.5, 1.0]
    from prefrl.data.loaders import load_prompts

    record = load_prompts("arithmetic", "train", 0, 1)[0]
    # fmt: a one-line answer ending in a number = 1 (·0.5); gold: the reference answer is right (·1)
    assert source.score(RewardRows([record.prompt], [record.reference[-1]["content"]])).tolist() == [0.5 * 1.0 + 1.0 * 1.0]
    each = source.score_each(RewardRows([record.prompt], ["two\nlines"]))
    assert each.tolist() == [[0.0, 0.0]]


def test_no_reward_on_a_task_is_its_gold_judge_and_elsewhere_nothing():
    assert isinstance(build_reward_source(section(), "arithmetic"), PreferenceModelReward)
    assert build_reward_source(section(), "some.jsonl") is None
    with pytest.raises(ConfigError, match="not a built-in task"):
        build_reward_source(section(reward="gold"), "some.jsonl")
    with pytest.raises(ConfigError, match="no such directory"):
        build_reward_source(section(reward="/no/such/dir"), "arithmetic")


# --- Hugging Face sequence classifiers -----------------------------------------------------------

@pytest.fixture(scope="module")
def hf_reward_dir(tmp_path_factory):
    """A tiny random LlamaForSequenceClassification (num_labels=1), saved as TRL saves a reward model."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from prefrl.models.loading import load_tokenizer

    tokenizer = load_tokenizer("tiny")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tokenizer.pad_token_id)
    directory = tmp_path_factory.mktemp("hf-rm")
    LlamaForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_a_hugging_face_reward_model_scores_the_templated_conversation(hf_reward_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from prefrl.data.templates import render_conversation

    source = build_reward_source(section(reward=f"hf:{hf_reward_dir}"), "arithmetic")
    auto = build_reward_source(section(reward=str(hf_reward_dir)), "arithmetic")  # a plain directory is detected
    assert isinstance(source, HFRewardModel) and isinstance(auto, HFRewardModel)
    prompts, responses = ["What is 2+2?", "Hi"], ["4", "hello there, a longer answer"]
    scores = source.score(RewardRows(prompts, responses))
    # independently: each conversation alone (no padding), the logit of its last token
    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(hf_reward_dir).eval(), AutoTokenizer.from_pretrained(hf_reward_dir)
    with torch.no_grad():
        expected = [model(**tokenizer(render_conversation(tokenizer, p, r), return_tensors="pt", add_special_tokens=False)).logits[0, 0].item() for p, r in zip(prompts, responses)]
    torch.testing.assert_close(scores, torch.tensor(expected), atol=1e-5, rtol=1e-4)
    assert torch.equal(auto.score(RewardRows(prompts, responses)), scores)


def test_a_classifier_with_several_labels_is_refused(tmp_path, hf_reward_dir):
    config = json.loads((hf_reward_dir / "config.json").read_text())
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from prefrl.models.loading import load_tokenizer

    LlamaForSequenceClassification(LlamaConfig(**{**config, "num_labels": 3, "id2label": None, "label2id": None})).save_pretrained(tmp_path)
    load_tokenizer("tiny").save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="num_labels=1"):
        HFRewardModel(str(tmp_path))


# --- remote reward servers (OpenRLHF's contract) -------------------------------------------------

class LengthServer(BaseHTTPRequestHandler):
    """Reward = length of the query; records what it was sent."""

    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        LengthServer.received.append(body)
        reply = json.dumps({"rewards": [float(len(q)) for q in body["query"]]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_a_remote_server_gets_query_and_prompts_and_its_rewards_come_back():
    server = HTTPServer(("127.0.0.1", 0), LengthServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/get_reward"
        source = build_reward_source(section(reward=url, reward_timeout=5), "arithmetic")
        assert isinstance(source, RemoteReward)
        scores = source.score(RewardRows(["ab", "ab"], ["c", "cde"]))
        assert scores.tolist() == [3.0, 5.0]
        assert LengthServer.received[-1] == {"query": ["abc", "abcde"], "prompts": ["ab", "ab"]}
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_down_is_named_in_the_error():
    server = HTTPServer(("127.0.0.1", 0), LengthServer)  # take a free port, then close it
    port = server.server_port
    server.server_close()
    url = f"http://127.0.0.1:{port}/get_reward"
    with pytest.raises(RewardSourceError, match=rf"reward server {url} did not answer .* after 2 tries"):
        RemoteReward(url, timeout=1, retries=1, backoff_s=0.01).score(RewardRows(["p"], ["r"]))


# --- the config keys -----------------------------------------------------------------------------

@pytest.mark.parametrize("old", ["reward_model", "oracle", "judge"])
def test_the_old_reward_keys_name_the_new_one(old):
    from prefrl.algorithms.grpo import GRPOConfig

    with pytest.raises(ConfigError, match=rf"config key '{old}' \(on the command line\) was renamed: use reward="):
        load_config(GRPOConfig, overrides=[f"{old}=runs/rm"])


def test_reward_weights_must_match_the_sources():
    from prefrl.algorithms.grpo import GRPOConfig

    with pytest.raises(ConfigError, match="2 weights for 1 reward sources"):
        load_config(GRPOConfig, overrides=["reward=gold", "reward_weights=1,2"])
    config = load_config(GRPOConfig, overrides=[f"reward={EXAMPLE}:fmt_reward,gold", "reward_weights=0.5,1"])
    assert config.reward_weights == [0.5, 1.0]


def test_grpo_learns_from_a_function_that_reads_a_dataset_column(tmp_path):
    """End to end on the tiny model: the file's extra column reaches the function, K times per prompt."""
    from prefrl.algorithms.grpo import GRPOConfig, train_group_policy
    from prefrl.engine.metrics import read_metrics

    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Say {i}", "ground_truth": str(i)}) + "\n" for i in range(4)))
    module = tmp_path / "column_reward.py"
    module.write_text(
        "import json, pathlib\n"
        "def reward(prompts, completions, ground_truth, **columns):\n"
        f"    pathlib.Path({str(tmp_path / 'seen.json')!r}).write_text(json.dumps(list(zip(prompts, ground_truth))))\n"
        "    return [float(len(c) % 2) for c in completions]\n"
    )
    run = tmp_path / "run"
    train_group_policy(GRPOConfig(model="tiny", data=str(data), reward=f"{module}:reward", max_steps=1, batch_size=2, num_generations=2, max_new_tokens=4, num_eval=0, output_dir=str(run), progress=False))
    (step,) = [m for m in read_metrics(run) if "train/reward" in m]
    assert 0.0 <= step["train/reward"] <= 1.0
    rows = json.loads((tmp_path / "seen.json").read_text())
    assert len(rows) == 4 and all(prompt == f"Say {truth}" for prompt, truth in rows)
