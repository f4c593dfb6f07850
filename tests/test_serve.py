"""`prefrl serve`: the real server on loopback (port 0), called with a real HTTP client."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
import torch

from prefrl.preference import GoldJudge, load_preference_model
from prefrl.preference.base import PointwisePreferenceModel
from prefrl.preference.bradley_terry import BradleyTerryModel
from prefrl.preference.pairwise import PairwiseJudge
from prefrl.serve import PreferenceServer, split_query

ARITHMETIC_PROMPT = "What is 17 + 25?"


class FailingModel(PointwisePreferenceModel):
    """Scores 1.0, except that a response "boom" makes the model raise (a model failure: 500)."""

    kind = "failing"

    def score(self, prompts, responses):
        if "boom" in responses:
            raise RuntimeError("the model broke")
        return torch.ones(len(responses))


def start(model, **options) -> PreferenceServer:
    server = PreferenceServer(model, port=0, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server: PreferenceServer) -> None:
    server.shutdown()
    server.server_close()


def call(server: PreferenceServer, method: str, path: str, body=None, raw: bytes | None = None, headers: dict | None = None):
    """(status, JSON answer, headers) of one request on a fresh connection."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    answer = json.loads(response.read() or b"null")
    connection.close()
    return response.status, answer, dict(response.getheaders())


def raw_exchange(server: PreferenceServer, request: bytes, pause: float = 0.0) -> tuple[int, dict]:
    """Send bytes as they are (no client fixing up headers); (status, JSON answer)."""
    with socket.create_connection(server.server_address[:2], timeout=30) as connection:
        connection.sendall(request)
        if pause:
            time.sleep(pause)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture(scope="module")
def bt_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bt") / "model"
    BradleyTerryModel.from_base("tiny").save(directory)
    return directory.parent  # a run directory: its model sits in model/


@pytest.fixture(scope="module")
def bt_server(bt_dir):
    server = start(load_preference_model(str(bt_dir)), batch_size=2)
    yield server
    stop(server)


@pytest.fixture(scope="module")
def gold_server():
    server = start(GoldJudge("arithmetic"))
    yield server
    stop(server)


@pytest.fixture(scope="module")
def pairwise_judge():
    return PairwiseJudge.from_base("tiny")


@pytest.fixture(scope="module")
def pairwise_server(pairwise_judge):
    server = start(pairwise_judge, batch_size=2)
    yield server
    stop(server)


# ---- answers --------------------------------------------------------------------------------------
def test_health_names_the_model(bt_server, pairwise_server):
    status, answer, _ = call(bt_server, "GET", "/health")
    assert status == 200 and answer["status"] == "ok"
    assert (answer["kind"], answer["pointwise"], answer["batch_size"]) == ("bradley-terry", True, 2)
    assert call(pairwise_server, "GET", "/health")[1]["pointwise"] is False


def test_get_reward_native_form_equals_the_models_scores_in_chunks(bt_server, bt_dir):
    prompts = ["q1", "a longer question two", "q3", "q4", [{"role": "user", "content": "chat question"}]]
    responses = ["yes", "no, a longer answer", "maybe", "", [{"role": "assistant", "content": "chat answer"}]]
    status, answer, _ = call(bt_server, "POST", "/get_reward", {"prompts": prompts, "responses": responses})
    assert status == 200
    # independent computation: a fresh copy of the model scores all five rows in one call (the server: chunks of 2)
    expected = load_preference_model(str(bt_dir)).score(prompts, responses)
    torch.testing.assert_close(torch.tensor(answer["rewards"]), expected, atol=1e-5, rtol=1e-5)
    assert answer["scores"] == answer["rewards"] and answer["extra_logs"] == {}


def test_openrlhf_query_form_splits_at_the_prompt_and_drops_end_tokens(bt_server):
    model = bt_server.rewards.model
    eos, pad = model.tokenizer.eos_token, model.tokenizer.pad_token
    prompts, responses = ["q1", "question two"], ["yes", "an answer"]
    queries = [f"{pad}{pad}q1yes{eos}", f"question twoan answer{eos}{pad}{pad}"]  # left padding, trailing eos and padding
    by_query = call(bt_server, "POST", "/get_reward", {"query": queries, "prompts": prompts, "labels": ["", ""]})
    native = call(bt_server, "POST", "/get_reward", {"prompts": prompts, "responses": responses})
    assert by_query[0] == native[0] == 200
    assert by_query[1]["rewards"] == native[1]["rewards"]


def test_gold_judge_rewards_and_probs_are_its_rule(gold_server):
    status, answer, _ = call(gold_server, "POST", "/get_reward", {"query": [ARITHMETIC_PROMPT + " The answer is 42.", ARITHMETIC_PROMPT + " The answer is 32."], "prompts": [ARITHMETIC_PROMPT] * 2})
    assert status == 200 and answer["rewards"] == [1.0, 0.0]
    status, answer, _ = call(
        gold_server, "POST", "/prob",
        {"prompts": [ARITHMETIC_PROMPT] * 3, "responses_a": ["The answer is 42.", "The answer is 32.", "42"], "responses_b": ["The answer is 32.", "The answer is 42.", "The answer is 42."]},
    )
    assert status == 200 and answer["probs"] == [1.0, 0.0, 0.5]


def test_prob_of_a_pointwise_model_is_the_sigmoid_of_the_score_difference(bt_server):
    prompts, a, b = ["q1", "q2", "q3"], ["yes", "fine", "x"], ["no", "bad answer", "y"]
    probs = torch.tensor(call(bt_server, "POST", "/prob", {"prompts": prompts, "responses_a": a, "responses_b": b})[1]["probs"])
    rewards = lambda responses: torch.tensor(call(bt_server, "POST", "/get_reward", {"prompts": prompts, "responses": responses})[1]["rewards"])
    torch.testing.assert_close(probs, torch.sigmoid(rewards(a) - rewards(b)), atol=1e-5, rtol=1e-5)


def test_pairwise_model_rewards_against_the_references_and_needs_them(pairwise_server, pairwise_judge):
    prompts, responses, references = ["q1", "q2", "q3"], ["yes", "fine", "x"], ["no", "bad answer", "y"]
    status, answer, _ = call(pairwise_server, "POST", "/get_reward", {"prompts": prompts, "responses": responses})
    assert status == 422 and "references" in answer["error"] and "pairwise" in answer["error"]
    status, answer, _ = call(pairwise_server, "POST", "/get_reward", {"prompts": prompts, "responses": responses, "references": references})
    assert status == 200
    expected = pairwise_judge.prob(prompts, responses, references)
    torch.testing.assert_close(torch.tensor(answer["rewards"]), expected, atol=1e-5, rtol=1e-5)
    status, answer, _ = call(pairwise_server, "POST", "/prob", {"prompts": prompts, "responses_a": responses, "responses_b": references})
    torch.testing.assert_close(torch.tensor(answer["probs"]), expected, atol=1e-5, rtol=1e-5)


def test_concurrent_requests_each_get_their_own_answer(gold_server):
    answers: dict[int, list] = {}

    def ask(index: int) -> None:
        response = f"The answer is {42 if index % 2 == 0 else 41}."
        answers[index] = call(gold_server, "POST", "/get_reward", {"prompts": [ARITHMETIC_PROMPT] * 3, "responses": [response] * 3})[1]["rewards"]

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {index: [1.0 if index % 2 == 0 else 0.0] * 3 for index in range(8)}


# ---- errors: each answered with its status and a JSON error, and the server goes on --------------
BAD_REQUESTS = [
    ("POST", "/get_reward", b"{not json", 400, "not JSON"),
    ("POST", "/get_reward", b"\xff\xfe", 400, "not JSON"),
    ("POST", "/get_reward", b"[1, 2]", 400, "JSON object"),
    ("POST", "/get_reward", json.dumps({"prompts": "q", "responses": ["a"]}).encode(), 400, "must be a list"),
    ("POST", "/get_reward", json.dumps({"prompts": ["q"], "responses": [3]}).encode(), 400, "item 0"),
    ("POST", "/get_reward", json.dumps({"prompts": ["q"], "responses": [[{"role": "user"}]]}).encode(), 400, "item 0"),
    ("POST", "/get_reward", json.dumps({"prompts": ["q", "r"], "responses": ["a"]}).encode(), 400, "prompts has 2, responses has 1"),
    ("POST", "/get_reward", json.dumps({"prompts": ["q"]}).encode(), 400, "missing field 'responses'"),
    ("POST", "/get_reward", json.dumps({"query": ["qa"]}).encode(), 400, "missing field 'prompts'"),
    ("POST", "/get_reward", json.dumps({"query": ["qa"], "prompts": ["q"], "responses": ["a"]}).encode(), 400, "not both"),
    ("POST", "/get_reward", json.dumps({"query": ["an answer"], "prompts": ["q?"]}).encode(), 400, "query 0"),
    ("POST", "/get_reward", json.dumps({"query": [["messages"]], "prompts": ["q"]}).encode(), 400, "item 0"),
    ("POST", "/prob", json.dumps({"prompts": ["q"], "responses_a": ["a"], "responses_b": ["b", "c"]}).encode(), 400, "responses_b has 2"),
    ("POST", "/prob", json.dumps({"prompts": ["q"], "responses_a": ["a"]}).encode(), 400, "missing field 'responses_b'"),
    ("GET", "/nothing", None, 404, "no endpoint"),
    ("POST", "/nothing", b"{}", 404, "no endpoint"),
    ("GET", "/get_reward", None, 405, "answers POST"),
    ("POST", "/health", b"{}", 405, "answers GET"),
    ("PUT", "/prob", b"{}", 405, "answers POST"),
    ("DELETE", "/health", None, 405, "answers GET"),
]


@pytest.mark.parametrize("method, path, raw, status, phrase", BAD_REQUESTS, ids=[f"{m} {p} {s} {ph}" for m, p, _, s, ph in BAD_REQUESTS])
def test_bad_request_is_answered_with_its_status_and_the_server_goes_on(gold_server, method, path, raw, status, phrase):
    answered, answer, headers = call(gold_server, method, path, raw=raw)
    assert answered == status and phrase in answer["error"]
    if status == 405:
        assert headers["Allow"] == ("GET" if path == "/health" else "POST")
    assert call(gold_server, "GET", "/health")[0] == 200


def test_no_length_is_411_and_chunked_is_411(gold_server):
    status, answer = raw_exchange(gold_server, b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n{}")
    assert status == 411 and "Content-Length" in answer["error"]
    host, port = gold_server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request("POST", "/get_reward", body=iter([b'{"prompts": []', b', "responses": []}']), encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 411 and "chunked" in json.loads(response.read())["error"]
    connection.close()
    status, answer = raw_exchange(gold_server, b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n")
    assert status == 400 and "byte count" in answer["error"]
    assert call(gold_server, "GET", "/health")[0] == 200


def test_body_over_the_limit_is_413_without_reading_it():
    server = start(GoldJudge("arithmetic"), max_body_bytes=100)
    try:
        body = {"prompts": ["q" * 200], "responses": ["a"]}
        status, answer, _ = call(server, "POST", "/get_reward", body)
        assert status == 413 and "at most 100" in answer["error"]
        small = {"prompts": [ARITHMETIC_PROMPT], "responses": ["The answer is 42."]}
        assert call(server, "POST", "/get_reward", small)[1]["rewards"] == [1.0]
    finally:
        stop(server)


def test_slow_body_is_408_and_the_server_goes_on():
    server = start(GoldJudge("arithmetic"), body_timeout=0.3)
    try:
        status, answer = raw_exchange(server, b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompts\"")
        assert status == 408 and "0.3 s" in answer["error"]
        assert call(server, "GET", "/health")[0] == 200
    finally:
        stop(server)


def test_model_failure_is_500_and_the_server_goes_on():
    server = start(FailingModel())
    try:
        status, answer, _ = call(server, "POST", "/get_reward", {"prompts": ["q", "q"], "responses": ["fine", "boom"]})
        assert status == 500 and "the model broke" in answer["error"]
        assert call(server, "POST", "/get_reward", {"prompts": ["q"], "responses": ["fine"]})[1]["rewards"] == [1.0]
    finally:
        stop(server)


def test_keep_alive_connection_carries_several_requests(gold_server):
    host, port = gold_server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    for response, expected in (("The answer is 42.", 1.0), ("The answer is 2.", 0.0)):
        connection.request("POST", "/get_reward", body=json.dumps({"prompts": [ARITHMETIC_PROMPT], "responses": [response]}))
        assert json.loads(connection.getresponse().read())["rewards"] == [expected]
    connection.close()


# ---- pieces ---------------------------------------------------------------------------------------
def test_split_query():
    assert split_query("<s>Q: 2+2? A: 4</s><pad><pad>", "Q: 2+2?", ("</s>", "<pad>")) == " A: 4"
    assert split_query("hello", "", ()) == "hello"
    assert split_query("Q A</s>", "Q", ()) == " A</s>"  # no markers: nothing dropped
    with pytest.raises(ValueError):
        split_query("A only", "Q", ())


def test_cli_serve_defaults_to_loopback_and_reports_problems(capsys):
    from prefrl.cli import build_parser, main

    args = build_parser().parse_args(["serve", "gold:arithmetic"])
    assert (args.host, args.port, args.batch_size, args.max_body_mb) == ("127.0.0.1", 5000, 16, 16)
    assert main(["serve", "/does/not/exist"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "gold:arithmetic", "--port", str(taken.getsockname()[1])]) == 2
    assert "cannot serve" in capsys.readouterr().err
    assert main(["serve", "gold:arithmetic", "--batch-size", "0"]) == 2
