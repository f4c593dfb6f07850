"""`prefrl serve`: any prefrl preference model over HTTP, with the standard library only.

    GET  /health      -> {"status": "ok", "kind", "pointwise", "batch_size", "endpoints"}
    POST /get_reward  OpenRLHF's contract  {"query": [prompt + response, ...], "prompts": [...]}
                      or the native form   {"prompts": [...], "responses": [...]}
                      (+ "references": [...], the anchors a pairwise model needs)
                      -> {"rewards": [...], "scores": [...], "extra_logs": {}}
    POST /prob        {"prompts", "responses_a", "responses_b"} -> {"probs": [P(a ≻ b | x), ...]}

OpenRLHF's trainer posts `query` = the decoded prompt + response (its remote_rm_fn; `labels` and
other fields ride along and are ignored here) and `prompts` = the prompt it generated from. The
response is what follows the prompt's first occurrence in the query, less the trailing end-of-text /
padding tokens of this model's tokenizer (OpenRLHF's own reward server strips them the same way).
Prompts are read as text: a prompt the trainer already rendered through a chat template is scored
as that text, wrapped in this model's template once more, so serve models to trainers that send
plain prompts, or use the native form with chat messages.

Rewards follow prefrl.integrations.scoring: a pointwise model's score, a pairwise model's
P(response ≻ reference). `scores` repeats the rewards (OpenRLHF reads them for dynamic filtering).
Each request is scored under one lock (a model serves one batch at a time) in chunks of batch_size.
Every bad request is answered with a JSON {"error": ...} and a 4xx status; a model failure with 500;
the server keeps serving after either.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from prefrl.data.records import Text
from prefrl.integrations.scoring import AnchorRequiredError, ModelRewards
from prefrl.preference.base import PreferenceModel

LOG = logging.getLogger("prefrl.serve")
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 5000
MEBIBYTE = 1 << 20


class RequestError(Exception):
    """A request the server answers with `status` and a JSON error message."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ---- request bodies -------------------------------------------------------------------------------
@dataclass
class RewardRequest:
    prompts: list[Text]
    responses: list[Text]
    anchors: list[Text] | None = None


@dataclass
class ProbRequest:
    prompts: list[Text]
    responses_a: list[Text]
    responses_b: list[Text]


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(message, dict) and isinstance(message.get("role"), str) and isinstance(message.get("content"), str) for message in value
    )


def _texts(body: dict, name: str, strings_only: bool = False) -> list[Text] | None:
    """Field `name` as a list of texts (strings, or lists of chat messages unless strings_only); None if absent."""
    if name not in body:
        return None
    value = body[name]
    kinds = "strings" if strings_only else "strings or lists of chat messages ({'role': ..., 'content': ...})"
    if not isinstance(value, list):
        raise RequestError(HTTPStatus.BAD_REQUEST, f"field {name!r} must be a list of {kinds}, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not (isinstance(item, str) or (not strings_only and _is_messages(item))):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"field {name!r}: item {index} must be one of the {kinds}, got {type(item).__name__}")
    return value


def _require(body: dict, name: str, why: str, strings_only: bool = False) -> list[Text]:
    value = _texts(body, name, strings_only)
    if value is None:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"missing field {name!r}: {why}")
    return value


def _same_lengths(**fields: list | None) -> None:
    lengths = {name: len(value) for name, value in fields.items() if value is not None}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the lists must have one item per row: {listed}")


def split_query(query: str, prompt: str, end_markers: tuple[str, ...] = ()) -> str:
    """The response inside OpenRLHF's query (prompt + response): what follows the prompt's first
    occurrence (the query may start with padding or a BOS the prompt lacks), less trailing end markers."""
    at = query.find(prompt)
    if at < 0:
        raise ValueError("the query does not contain its prompt")
    response = query[at + len(prompt) :]
    markers = tuple(marker for marker in end_markers if marker)
    while markers and response.endswith(markers):
        response = response[: -len(next(marker for marker in markers if response.endswith(marker)))]
    return response


def parse_reward_request(body: dict, end_markers: tuple[str, ...] = ()) -> RewardRequest:
    """OpenRLHF's {"query", "prompts"} or the native {"prompts", "responses"}; "references" optional."""
    if "query" in body and "responses" in body:
        raise RequestError(HTTPStatus.BAD_REQUEST, "give either 'query' (OpenRLHF: prompt + response texts) or 'responses', not both")
    anchors = _texts(body, "references")
    if "query" in body:
        queries = _require(body, "query", "", strings_only=True)
        prompts = _require(body, "prompts", "this server splits each query into prompt and response at its prompt", strings_only=True)
        _same_lengths(query=queries, prompts=prompts, references=anchors)
        responses = []
        for index, (query, prompt) in enumerate(zip(queries, prompts)):
            try:
                responses.append(split_query(query, prompt, end_markers))
            except ValueError as error:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"query {index}: {error}") from None
        return RewardRequest(prompts, responses, anchors)
    prompts = _require(body, "prompts", "the prompt of each row")
    responses = _require(body, "responses", "give 'responses' (or OpenRLHF's 'query': prompt + response texts)")
    _same_lengths(prompts=prompts, responses=responses, references=anchors)
    return RewardRequest(prompts, responses, anchors)


def parse_prob_request(body: dict) -> ProbRequest:
    prompts = _require(body, "prompts", "the prompt of each pair")
    responses_a = _require(body, "responses_a", "the first response of each pair")
    responses_b = _require(body, "responses_b", "the second response of each pair")
    _same_lengths(prompts=prompts, responses_a=responses_a, responses_b=responses_b)
    return ProbRequest(prompts, responses_a, responses_b)


def _finite(values: list[float], what: str) -> list[float]:
    if not all(math.isfinite(value) for value in values):
        raise ArithmeticError(f"the model returned a non-finite {what}")
    return values


# ---- the server -----------------------------------------------------------------------------------
class PreferenceServer(ThreadingHTTPServer):
    """A threading HTTP server around one preference model; `serve_forever()` runs it."""

    daemon_threads = True  # a stuck client never keeps the process alive at shutdown
    request_queue_size = 64  # several trainer processes may connect at once (the default backlog is 5)

    def __init__(
        self,
        model: PreferenceModel,
        host: str = LOOPBACK,
        port: int = DEFAULT_PORT,
        batch_size: int = 16,
        max_body_bytes: int = 16 * MEBIBYTE,
        body_timeout: float = 30.0,
    ):
        self.rewards = ModelRewards(model, batch_size)
        self.model_lock = threading.Lock()
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        tokenizer = getattr(model, "tokenizer", None)
        self.end_markers = tuple(dict.fromkeys(token for token in (getattr(tokenizer, "eos_token", None), getattr(tokenizer, "pad_token", None)) if isinstance(token, str) and token))
        super().__init__((host, port), PreferenceRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def health(self) -> dict:
        return {
            "status": "ok",
            "kind": self.rewards.model.kind,
            "pointwise": self.rewards.is_pointwise,
            "batch_size": self.rewards.batch_size,
            "endpoints": ["GET /health", "POST /get_reward", "POST /prob"],
        }

    def get_reward(self, body: dict) -> dict:
        request = parse_reward_request(body, self.end_markers)
        with self.model_lock:
            rewards = _finite(self.rewards.rewards(request.prompts, request.responses, request.anchors), "reward")
        return {"rewards": rewards, "scores": rewards, "extra_logs": {}}

    def prob(self, body: dict) -> dict:
        request = parse_prob_request(body)
        with self.model_lock:
            probs = _finite(self.rewards.probs(request.prompts, request.responses_a, request.responses_b), "probability")
        return {"probs": probs}

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection that broke outside a handler (client gone mid-reply): log it, keep serving.
        LOG.exception("connection from %s failed", client_address)


class PreferenceRequestHandler(BaseHTTPRequestHandler):
    server: PreferenceServer
    protocol_version = "HTTP/1.1"  # keep-alive: a trainer posts many batches on one connection
    # path -> (its method, the server's method that answers its JSON body; None: GET /health)
    ROUTES: dict[str, tuple[str, Callable[[PreferenceServer, dict], dict] | None]] = {
        "/health": ("GET", None),
        "/get_reward": ("POST", PreferenceServer.get_reward),
        "/prob": ("POST", PreferenceServer.prob),
    }

    def setup(self) -> None:
        # Bounds both a slow body (answered 408) and an idle keep-alive connection (closed).
        self.timeout = self.server.body_timeout
        super().setup()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        try:
            path = urlsplit(self.path).path
            if path not in self.ROUTES:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no endpoint {path!r}; the endpoints are {', '.join(self.server.health()['endpoints'])}")
            allowed, answer = self.ROUTES[path]
            if method != allowed:
                raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} answers {allowed}, not {method}")
            payload = self.server.health() if answer is None else answer(self.server, self._read_json())
            self._send(HTTPStatus.OK, payload)
        except RequestError as error:
            self._send(error.status, {"error": error.message}, allow=self.ROUTES.get(urlsplit(self.path).path, (None,))[0])
        except AnchorRequiredError as error:
            message = f"{error}: add a 'references' list (one anchor response per row) to the request"
            self._send(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": message})
        except Exception as error:  # the model failed on valid input: say so, keep serving
            LOG.exception("%s %s failed", method, self.path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"the model failed: {type(error).__name__}: {error}"})

    def _read_json(self) -> dict:
        if self.headers.get("Transfer-Encoding"):
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length header, not chunked")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length header")
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length {length_header!r} is not a byte count")
        if length > self.server.max_body_bytes:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is {length} bytes; this server takes at most {self.server.max_body_bytes} (--max-body-mb)")
        try:
            raw = self.rfile.read(length)
        except (TimeoutError, socket.timeout):
            raise RequestError(HTTPStatus.REQUEST_TIMEOUT, f"the body did not arrive within {self.server.body_timeout:g} s") from None
        if len(raw) < length:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body ended after {len(raw)} of {length} bytes")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body must be a JSON object, got {type(body).__name__}")
        return body

    def _send(self, status: HTTPStatus, payload: dict, allow: str | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        if status != HTTPStatus.OK:
            # The body may be unread (404, 411, 413, 408): the connection cannot carry another request.
            self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == HTTPStatus.METHOD_NOT_ALLOWED and allow:
                self.send_header("Allow", allow)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            if self.close_connection:
                self._drain_before_close()
        except OSError:  # the client left before the answer: nothing to tell it
            self.close_connection = True

    def _drain_before_close(self, limit: int = MEBIBYTE, wait: float = 0.5) -> None:
        """Closing a socket with unread bytes makes the kernel send a reset, which can reach the client
        before our error answer and hide it: end our side, then read and drop what the client still
        sends (a bounded amount, briefly) so the answer arrives."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_WR)
        self.connection.settimeout(wait)
        dropped = 0
        try:
            while dropped < limit:
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                dropped += len(chunk)
        except OSError:  # the wait ran out or the client reset: the answer is out either way
            pass

    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s %s", self.address_string(), format % args)


def serve(model_path: str, host: str = LOOPBACK, port: int = DEFAULT_PORT, batch_size: int = 16, max_body_mb: float = 16, body_timeout: float = 30.0) -> None:
    """Load a preference model (run directory, model directory or gold:TASK) and serve it until interrupted."""
    from prefrl.preference import load_preference_model

    model = load_preference_model(model_path)
    server = PreferenceServer(model, host, port, batch_size, int(max_body_mb * MEBIBYTE), body_timeout)
    reach = "" if host in (LOOPBACK, "localhost", "::1") else f" (bound to {host}: reachable from other machines, with no authentication)"
    kind = "pointwise" if server.rewards.is_pointwise else "pairwise: /get_reward needs 'references'"
    print(f"prefrl serve: {model.kind} model ({kind}) on {server.url}{reach}; Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
