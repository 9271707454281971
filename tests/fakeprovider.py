"""A fake model provider on 127.0.0.1 for the real SDKs: OpenAI Chat Completions,
OpenAI Responses and Anthropic Messages, streamed (SSE) and not.

Bodies follow the SDKs' own types field for field (openai ``ChatCompletion`` /
``ChatCompletionChunk`` / ``Response`` / ``ResponseStreamEvent``, anthropic
``Message`` / ``RawMessageStreamEvent``), usage included with its cache and
reasoning details. Behaviour knobs (set on the ``FakeProvider`` before a call):

- ``ttft``: seconds from the response headers to the first content event;
- ``stream_time``: seconds the content events are spread over;
- ``latency``: seconds before a response that is not streamed;
- ``thinking``: seconds of thinking/reasoning deltas before the visible text
  (None: no thinking); Anthropic ``thinking_delta``, Chat ``reasoning_content``;
- ``fail_after``: content events sent before the stream breaks: Anthropic gets
  an SSE ``error`` event (as the API sends ``overloaded_error``), OpenAI a
  connection dropped mid-body (an incomplete chunked read);
- ``refuse_stream_options``: answer a request carrying ``stream_options`` with
  the 400 older OpenAI-compatible servers give;
- ``status``: answer every request with this HTTP error status.
- ``service_tier``: the tier OpenAI responses and chunks say served them
  (``default`` unless set: ``flex``, ``priority``).

``requests`` holds every request body received (path, JSON), to check what the
SDK sent (the model after a downgrade, ``stream_options``).

Usage the server reports (see ``CHAT_USAGE``, ``RESPONSES_USAGE``,
``ANTHROPIC_USAGE``) and the buckets they make are constants, so tests can work
the cost out by hand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TEXT = ["Hello", ",", " flight", "deck", "!"]
THOUGHTS = ["Let me", " think", " about it."]

CHAT_MODEL = "gpt-4o-2024-08-06"
RESPONSES_MODEL = "o4-mini-2025-04-16"
ANTHROPIC_MODEL = "claude-haiku-4-5-20251001"

# openai types/completion_usage.py CompletionUsage
CHAT_USAGE: dict[str, Any] = {
    "prompt_tokens": 1500,
    "completion_tokens": 300,
    "total_tokens": 1800,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 100, "audio_tokens": 0,
                                  "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
}
# openai types/responses/response_usage.py ResponseUsage
RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 2000,
    "input_tokens_details": {"cached_tokens": 1536},
    "output_tokens": 500,
    "output_tokens_details": {"reasoning_tokens": 320},
    "total_tokens": 2500,
}
# anthropic types/usage.py Usage, types/cache_creation.py CacheCreation
ANTHROPIC_USAGE: dict[str, Any] = {
    "input_tokens": 100,
    "cache_creation_input_tokens": 3000,
    "cache_read_input_tokens": 5000,
    "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 1000},
    "output_tokens": 400,
    "server_tool_use": None,
    "service_tier": "standard",
}


class FakeProvider:
    """The server: ``url`` (Anthropic base_url), ``openai_url`` (OpenAI base_url, ``/v1``)."""

    def __init__(self) -> None:
        self.ttft = 0.0
        self.stream_time = 0.0
        self.latency = 0.0
        self.thinking: float | None = None
        self.fail_after: int | None = None
        self.refuse_stream_options = False
        self.status: int | None = None
        self.service_tier = "default"
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fakeprovider", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.openai_url = f"{self.url}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def note(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append((path, body))

    def bodies(self, path_end: str) -> list[dict[str, Any]]:
        """Request bodies received on paths ending with ``path_end``."""
        with self._lock:
            return [b for p, b in self.requests if p.endswith(path_end)]


# -- wire bodies ---------------------------------------------------------------


def chat_completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fd1", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(TEXT), "refusal": None,
                                             "annotations": []},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": CHAT_USAGE, "service_tier": "default", "system_fingerprint": "fp_fd",
    }


def _chunk(model: str, delta: dict[str, Any] | None, finish: str | None = None,
           usage: dict[str, Any] | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-fd1", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "service_tier": "default", "system_fingerprint": "fp_fd",
            "choices": choices, "usage": usage}


def _response(model: str, status: str, text: str | None) -> dict[str, Any]:
    output = []
    if text is not None:
        output.append({"id": "msg_fd1", "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
    return {
        "id": "resp_fd1", "object": "response", "created_at": int(time.time()), "status": status,
        "background": False, "error": None, "incomplete_details": None, "instructions": None,
        "max_output_tokens": None, "model": model, "output": output, "parallel_tool_calls": True,
        "previous_response_id": None, "reasoning": {"effort": "medium", "summary": None},
        "service_tier": "default", "store": True, "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [],
        "top_p": 1.0, "truncation": "disabled",
        "usage": RESPONSES_USAGE if status == "completed" else None, "user": None, "metadata": {},
    }


def anthropic_message(model: str) -> dict[str, Any]:
    return {"id": "msg_fd1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "".join(TEXT), "citations": None}],
            "stop_reason": "end_turn", "stop_sequence": None, "usage": ANTHROPIC_USAGE}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # -- plumbing -----------------------------------------------------------------
    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _send(self, data: str) -> None:
        raw = data.encode()
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Break the body mid-stream: no terminating chunk, socket closed."""
        self.wfile.flush()
        self.connection.shutdown(2)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        fake = self.fake
        fake.note(self.path, body)
        if fake.status is not None:
            self._json(fake.status, {"error": {"message": "fake failure", "type": "server_error",
                                               "param": None, "code": None}})
            return
        path = self.path.split("?", 1)[0]
        if path.endswith("/chat/completions"):
            self._chat(body)
        elif path.endswith("/responses"):
            self._responses(body)
        elif path.endswith("/messages"):
            self._messages(body)
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    # -- pacing -------------------------------------------------------------------------
    def _paced(self, parts: list[str], spread: float) -> Iterator[tuple[int, str]]:
        """Yield parts spread evenly over ``spread`` seconds (the first at once)."""
        gap = spread / max(1, len(parts) - 1) if len(parts) > 1 else 0.0
        for i, part in enumerate(parts):
            if i and gap:
                time.sleep(gap)
            yield i, part

    def _content(self, wait: bool = True) -> Iterator[tuple[str, str]]:
        """(kind, text) content events after ttft (``wait``: sleep it here): thinking first if asked,
        then text; stops at fail_after."""
        fake = self.fake
        if wait:
            time.sleep(fake.ttft)
        sent = 0
        if fake.thinking is not None:
            for _, t in self._paced(THOUGHTS, fake.thinking):
                if fake.fail_after is not None and sent >= fake.fail_after:
                    return
                sent += 1
                yield "thinking", t
            time.sleep(fake.thinking / len(THOUGHTS))
        for _, t in self._paced(TEXT, fake.stream_time):
            if fake.fail_after is not None and sent >= fake.fail_after:
                return
            sent += 1
            yield "text", t

    def _broke(self, sent: int) -> bool:
        return self.fake.fail_after is not None and sent >= self.fake.fail_after

    # -- OpenAI Chat Completions ------------------------------------------------------------
    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.fake
        model = body.get("model") or CHAT_MODEL
        model = CHAT_MODEL if model == "gpt-4o" else model
        if not body.get("stream"):
            time.sleep(fake.latency)
            self._json(200, {**chat_completion(model), "service_tier": fake.service_tier})
            return
        if fake.refuse_stream_options and "stream_options" in body:
            self._json(400, {"error": {"message": "Unrecognized request argument supplied: stream_options",
                                       "type": "invalid_request_error", "param": None, "code": None}})
            return
        self._start_sse()
        # OpenAI sends the role chunk with the first token, not before it.
        time.sleep(fake.ttft)
        self._send("data: " + json.dumps(_chunk(model, {"role": "assistant", "content": "", "refusal": None})) + "\n\n")
        sent = 0
        for kind, text in self._content(wait=False):
            delta = {"reasoning_content": text} if kind == "thinking" else {"content": text}
            self._send("data: " + json.dumps(_chunk(model, delta)) + "\n\n")
            sent += 1
        if self._broke(sent):
            self._drop()
            return
        self._send("data: " + json.dumps(_chunk(model, {}, finish="stop")) + "\n\n")
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            last = {**_chunk(model, None, usage=CHAT_USAGE), "service_tier": fake.service_tier}
            self._send("data: " + json.dumps(last) + "\n\n")
        self._send("data: [DONE]\n\n")
        self._end_sse()

    # -- OpenAI Responses -------------------------------------------------------------------
    def _responses(self, body: dict[str, Any]) -> None:
        fake = self.fake
        model = body.get("model") or RESPONSES_MODEL
        model = RESPONSES_MODEL if model == "o4-mini" else model
        text = "".join(TEXT)
        if not body.get("stream"):
            time.sleep(fake.latency)
            self._json(200, {**_response(model, "completed", text), "service_tier": fake.service_tier})
            return
        self._start_sse()
        seq = 0

        def event(kind: str, **fields: Any) -> None:
            nonlocal seq
            self._send(f"event: {kind}\ndata: " + json.dumps({"type": kind, "sequence_number": seq, **fields})
                       + "\n\n")
            seq += 1

        event("response.created", response=_response(model, "in_progress", None))
        event("response.in_progress", response=_response(model, "in_progress", None))
        item = {"id": "msg_fd1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        event("response.output_item.added", output_index=0, item=item)
        event("response.content_part.added", item_id="msg_fd1", output_index=0, content_index=0,
              part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
        sent = 0
        for _, piece in self._content():
            event("response.output_text.delta", item_id="msg_fd1", output_index=0, content_index=0,
                  delta=piece, logprobs=[])
            sent += 1
        if self._broke(sent):
            self._drop()
            return
        event("response.output_text.done", item_id="msg_fd1", output_index=0, content_index=0, text=text,
              logprobs=[])
        event("response.content_part.done", item_id="msg_fd1", output_index=0, content_index=0,
              part={"type": "output_text", "text": text, "annotations": [], "logprobs": []})
        done = {**_response(model, "completed", text), "service_tier": fake.service_tier}
        event("response.output_item.done", output_index=0, item=done["output"][0])
        event("response.completed", response=done)
        self._end_sse()

    # -- Anthropic Messages -------------------------------------------------------------------
    def _messages(self, body: dict[str, Any]) -> None:
        fake = self.fake
        model = body.get("model") or ANTHROPIC_MODEL
        model = ANTHROPIC_MODEL if model == "claude-haiku-4-5" else model
        if not body.get("stream"):
            time.sleep(fake.latency)
            self._json(200, anthropic_message(model))
            return
        self._start_sse()

        def event(kind: str, **fields: Any) -> None:
            self._send(f"event: {kind}\ndata: " + json.dumps({"type": kind, **fields}) + "\n\n")

        start_usage = {**ANTHROPIC_USAGE, "output_tokens": 1}
        event("message_start", message={"id": "msg_fd1", "type": "message", "role": "assistant", "model": model,
                                        "content": [], "stop_reason": None, "stop_sequence": None,
                                        "usage": start_usage})
        event("ping")
        index = 0
        open_kind: str | None = None
        sent = 0
        for kind, piece in self._content():
            if kind != open_kind:
                if open_kind is not None:
                    if open_kind == "thinking":
                        event("content_block_delta", index=index,
                              delta={"type": "signature_delta", "signature": "c2lnbmF0dXJl"})
                    event("content_block_stop", index=index)
                    index += 1
                block = ({"type": "thinking", "thinking": "", "signature": ""} if kind == "thinking"
                         else {"type": "text", "text": "", "citations": None})
                event("content_block_start", index=index, content_block=block)
                open_kind = kind
            delta = ({"type": "thinking_delta", "thinking": piece} if kind == "thinking"
                     else {"type": "text_delta", "text": piece})
            event("content_block_delta", index=index, delta=delta)
            sent += 1
        if self._broke(sent):
            self._send("event: error\ndata: " + json.dumps(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}) + "\n\n")
            self._end_sse()
            return
        event("content_block_stop", index=index)
        final = {k: ANTHROPIC_USAGE[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                                   "cache_read_input_tokens", "output_tokens")}
        final["server_tool_use"] = None
        event("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage=final)
        event("message_stop")
        self._end_sse()
