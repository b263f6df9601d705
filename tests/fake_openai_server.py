"""A scriptable fake of the OpenAI chat-completions endpoint, on 127.0.0.1 in a thread.

Each request pops the next scripted action, if any, else gets `default_reply(body)`. Actions:
  ("status", code)        -> an error response with that HTTP status
  ("sleep", seconds)      -> wait (so that a client with a short timeout gives up), then answer
  ("content", text)       -> a normal completion whose message content is `text`
  ("drop", None)          -> close the connection without answering (a connection error)
Transport garbage, all with HTTP 200 (what a broken server or proxy sends; not a model's answer):
  ("truncated", None)     -> a completion's JSON body cut off half-way (Content-Type JSON)
  ("html", None)          -> a proxy's HTML error page (Content-Type text/html)
  ("payload", obj)        -> `obj` as the JSON body, e.g. {} or {"choices": []}
  ("raw", (ctype, text))  -> `text` as the body with Content-Type `ctype` (None: no header)
`fail_after = k` makes every request after k successful answers fail with HTTP 400.

Every completion reports `usage`: prompt tokens = the words of the request's messages, completion
tokens = the words of the answer (`token_counts`); `usages` lists them per completion sent.
`report_usage = False` leaves the field out (a server that reports no tokens).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def default_reply(body: dict[str, Any]) -> str:
    """A valid answer for our four schemas; a judge says True for texts holding 'cat'."""
    fmt = body.get("response_format", {})
    name = fmt.get("json_schema", {}).get("name", "")
    user = body["messages"][-1]["content"]
    if name == "descriptions":
        ask = body["messages"][1]["content"]  # the request, also when this is a re-ask
        k = int(re.search(r"Write (\d+) different", ask).group(1))
        batch = re.search(r"\(batch (\d+)\)", ask).group(1)
        return json.dumps({"descriptions": [f"photo {i} of batch {batch}" for i in range(k)]})
    if name == "concept_label" or "Which concept" in user:
        return json.dumps({"label": "Animals"})
    if name == "head_verdicts" or "For each description" in user:
        texts = re.findall(r"^\d+\. (.*)$", user, flags=re.MULTILINE)
        return json.dumps({"aligned": ["cat" in t.lower() for t in texts]})
    text = re.search(r'^Description: "(.*)"$', user, flags=re.MULTILINE).group(1)
    return json.dumps({"aligned": "cat" in text.lower()})


class FakeOpenAIServer:
    def __init__(self) -> None:
        self.script: deque[tuple[str, Any]] = deque()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.n_answered = 0
        self.fail_after: int | None = None
        self.report_usage = True
        self.usages: list[tuple[int, int]] = []  # (prompt, completion) per completion sent
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def n_requests(self) -> int:
        with self._lock:
            return len(self.bodies)

    def push(self, *actions: tuple[str, Any]) -> None:
        self.script.extend(actions)

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_action(self, body: dict[str, Any]) -> tuple[str, Any]:
        with self._lock:
            self.bodies.append(body)
            if self.fail_after is not None and self.n_answered >= self.fail_after:
                return ("status", 400)
            if self.script:
                return self.script.popleft()
            return ("content", default_reply(body))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, payload: Any) -> None:
                self._send_raw(status, "application/json", json.dumps(payload))

            def _send_raw(self, status: int, content_type: str | None, text: str) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    if content_type is not None:
                        self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                kind, arg = server._next_action(body)
                if kind == "sleep":
                    time.sleep(arg)
                    kind, arg = "content", default_reply(body)
                if kind == "status":
                    error = {"message": f"scripted HTTP {arg}", "type": "test", "code": None}
                    self._send(arg, {"error": error})
                    return
                if kind == "drop":
                    self.close_connection = True  # no status line: the client sees a disconnect
                    return
                if kind == "truncated":
                    text = json.dumps(completion(body, default_reply(body)))
                    self._send_raw(200, "application/json", text[: len(text) // 2])
                    return
                if kind == "html":
                    page = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
                    self._send_raw(200, "text/html", page)
                    return
                if kind == "payload":
                    self._send(200, arg)
                    return
                if kind == "raw":
                    self._send_raw(200, *arg)
                    return
                reply = completion(body, arg)
                with server._lock:
                    server.n_answered += 1
                    if server.report_usage:
                        usage = reply["usage"]
                        server.usages.append((usage["prompt_tokens"], usage["completion_tokens"]))
                    else:
                        del reply["usage"]
                self._send(200, reply)

        return Handler


def token_counts(body: dict[str, Any], content: str) -> tuple[int, int]:
    """The fake's token counts: words of the messages, words of the answer."""
    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    return prompt, len(content.split())


def completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    """A well-formed chat completion whose message content is `content`."""
    prompt, answer = token_counts(body, content)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": answer,
            "total_tokens": prompt + answer,
        },
    }


def server_spec(server: FakeOpenAIServer, key_env: str, **overrides: Any) -> dict[str, Any]:
    """An `openai_compatible` backend spec for `server`, fast retries, the key named by `key_env`."""
    spec = {
        "backend": "openai_compatible",
        "model": "fake-model",
        "base_url": server.base_url,
        "api_key_env": key_env,
        "max_retries": 3,
        "timeout_s": 5,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.01,
        "max_concurrency": 1,
    }
    return {**spec, **overrides}
