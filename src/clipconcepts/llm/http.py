"""How a request reaches an LLM: the `Backend` base class (one call, retried with backoff on
transient failures) and the OpenAI / OpenAI-compatible backend on the official `openai` client.

Every transport failure names the backend, its model and its base_url. A 200 whose body is not a
chat completion (truncated JSON, a proxy's HTML page, no `choices`) is transport garbage: it is
retried like a 5xx (`BadResponseError`), never passed on as the model's answer.

Token use: each call's reply carries the server's `usage` (prompt and completion tokens) when
it reports one (`Reply`); `Backend.call` adds it to the job's statistics.

Secrets: the API key is read from the environment variable named by `api_key_env` when the first
request is sent. It lives only inside the `openai` client, which is never pickled, printed, logged,
hashed into cache keys or written anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clipconcepts.llm.cache import LLMStats
from clipconcepts.llm.errors import (
    BadResponseError,
    LLMConfigError,
    LLMRequestError,
    TransientLLMError,
)
from clipconcepts.llm.prompts import LLMRequest, Message

log = logging.getLogger(__name__)

DUMMY_API_KEY = "not-needed"


@dataclass(frozen=True)
class Reply:
    """One call's reply: its text and the tokens the server reported (None: not reported)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def has_usage(self) -> bool:
        return self.prompt_tokens is not None and self.completion_tokens is not None


class Backend(ABC):
    """One configured LLM. `identity()` is what its answers depend on (it enters cache keys);
    `complete()` sends one request and returns the reply (its text, or a `Reply` with the
    tokens it used)."""

    kind: str
    model: str
    name: str
    max_retries: int = 0
    backoff_base_s: float = 0.0
    backoff_max_s: float = 0.0
    max_concurrency: int = 1

    @abstractmethod
    def identity(self) -> dict[str, Any]: ...

    @abstractmethod
    def complete(self, request: LLMRequest, messages: Sequence[Message]) -> str | Reply:
        """One call; raises TransientLLMError (retryable) or LLMRequestError / LLMConfigError.
        A plain text reply means the tokens it used are unknown."""

    def describe(self) -> str:
        """How errors and logs name this backend."""
        return f"LLM backend {self.name!r}"

    def call(self, request: LLMRequest, messages: Sequence[Message], stats: LLMStats) -> Reply:
        """`complete` with exponential backoff and jitter on transient failures; the reply's
        tokens are added to `stats` (failed attempts report none)."""
        for attempt in range(self.max_retries + 1):
            stats.add(self.name, requests=1)
            try:
                reply = self.complete(request, messages)
            except TransientLLMError as err:
                if attempt == self.max_retries:
                    raise LLMRequestError(
                        f"{self.describe()}: still failing after {attempt + 1} attempts "
                        f"({self.max_retries} retries): {err}"
                    ) from err
                delay = self.backoff_base_s * 2**attempt * (1 + random.random())
                if err.retry_after_s is not None:
                    delay = max(delay, err.retry_after_s)
                delay = min(delay, self.backoff_max_s)
                log.warning("%s: %s; retry %d in %.2f s", self.describe(), err, attempt + 1, delay)
                stats.add(self.name, retries=1)
                time.sleep(delay)
                continue
            if not isinstance(reply, Reply):
                reply = Reply(reply)
            if reply.has_usage:
                stats.add(
                    self.name,
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                )
            return reply
        raise AssertionError("unreachable")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r})"


class OpenAIBackend(Backend):
    """The official `openai` client: api.openai.com, or any OpenAI-compatible server (vLLM,
    Ollama, ...) at `base_url`. Retries are ours (the client's own are switched off)."""

    def __init__(
        self,
        kind: str,
        model: str,
        name: str | None,
        base_url: str | None,
        api_key_env: str | None,
        temperature: float | None,
        seed: int | None,
        max_tokens: int | None,
        response_format: str,
        max_retries: int,
        timeout_s: float,
        backoff_base_s: float,
        backoff_max_s: float,
        max_concurrency: int,
    ) -> None:
        self.kind = kind
        self.model = model
        self.name = name or f"{kind}:{model}"
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.response_format = response_format
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_concurrency = max_concurrency
        self._client: Any = None
        self._client_lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "response_format": self.response_format,
        }

    def describe(self) -> str:
        url = self.base_url
        if url is None:  # the client's default (or OPENAI_BASE_URL), known once it exists
            url = str(self._client.base_url) if self._client is not None else "openai default"
        return f"LLM backend {self.name!r} (model {self.model!r}, base_url {url})"

    def _api_key(self) -> str:
        if self.api_key_env is None:
            return DUMMY_API_KEY
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise LLMConfigError(
                f"LLM backend {self.name!r} reads its API key from the environment variable "
                f"{self.api_key_env} (config key 'api_key_env'), which is not set"
            )
        return key

    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    api_key=self._api_key(),
                    base_url=self.base_url,
                    timeout=self.timeout_s,
                    max_retries=0,
                )
            return self._client

    def _response_format(self, request: LLMRequest) -> dict[str, Any]:
        if self.response_format == "json_object":
            return {"type": "json_object"}
        schema = {"name": request.schema_name, "schema": request.schema, "strict": True}
        return {"type": "json_schema", "json_schema": schema}

    def complete(self, request: LLMRequest, messages: Sequence[Message]) -> Reply:
        import openai

        kwargs: dict[str, Any] = {"response_format": self._response_format(request)}
        for option in ("temperature", "seed", "max_tokens"):
            if getattr(self, option) is not None:
                kwargs[option] = getattr(self, option)
        try:
            reply = self.client().chat.completions.create(
                model=self.model, messages=list(messages), **kwargs
            )
        except openai.APITimeoutError as err:
            raise TransientLLMError(f"timed out after {self.timeout_s} s") from err
        except openai.APIConnectionError as err:
            cause = f" ({err.__cause__})" if err.__cause__ else ""
            raise TransientLLMError(f"connection error: {err}{cause}") from err
        except openai.APIStatusError as err:
            status = err.status_code
            if status in (408, 429) or status >= 500:
                raise TransientLLMError(f"HTTP {status}", _retry_after(err)) from err
            raise LLMRequestError(
                f"{self.describe()}: HTTP {status}: {_error_message(err)}"
            ) from err
        except openai.APIResponseValidationError as err:
            raise BadResponseError(f"HTTP 200 but the body is no chat completion: {err}") from err
        except json.JSONDecodeError as err:
            # The client parses a body typed JSON without a guard: a truncated body lands here.
            raise BadResponseError(
                f"HTTP 200 but the body is not valid JSON ({err.msg} at character {err.pos})"
            ) from err
        return Reply(self._reply_text(reply), *_usage(reply))

    def _reply_text(self, reply: Any) -> str:
        """The first choice's text. A body that is not a chat completion raises BadResponseError:
        the client hands back a non-JSON body as a `str` and a JSON one unvalidated."""
        if isinstance(reply, str):
            if not reply.strip():
                raise BadResponseError("HTTP 200 with an empty body")
            raise BadResponseError(f"HTTP 200 but the body is not JSON: {self._snippet(reply)}")
        choices = getattr(reply, "choices", None)
        if not isinstance(choices, list):
            raise BadResponseError(
                f"HTTP 200 but the body is no chat completion (no 'choices' in a "
                f"{type(reply).__name__})"
            )
        if not choices:
            raise BadResponseError("HTTP 200 but the completion has no choices")
        message = getattr(choices[0], "message", None)
        if message is None:
            raise BadResponseError("HTTP 200 but the completion's first choice has no message")
        content = getattr(message, "content", None)
        if content is None:
            # No text, yet the model did answer (a refusal, or cut by max_tokens): re-asked.
            return getattr(message, "refusal", None) or ""
        if not isinstance(content, str):
            raise BadResponseError(
                f"HTTP 200 but the message content is a {type(content).__name__}, not text"
            )
        return content

    def _snippet(self, text: str, n: int = 80) -> str:
        """The start of a bad body, for the error message; a key echoed back is masked."""
        key = getattr(self._client, "api_key", None)
        if key and key != DUMMY_API_KEY:
            text = text.replace(key, "***")
        return repr(" ".join(text.split())[:n])

    def __getstate__(self) -> dict[str, Any]:
        # The client holds the API key: it never travels with the object.
        state = dict(self.__dict__)
        state["_client"] = None
        del state["_client_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._client_lock = threading.Lock()


def _usage(reply: Any) -> tuple[int | None, int | None]:
    """(prompt tokens, completion tokens) of a completion's `usage`; (None, None) when the
    server sent none or sent something that is not two counts."""
    usage = getattr(reply, "usage", None)
    if isinstance(usage, Mapping):  # a body the client did not validate
        counts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    else:
        counts = (
            getattr(usage, "prompt_tokens", None),
            getattr(usage, "completion_tokens", None),
        )
    if all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return counts
    return None, None


def _retry_after(err: Any) -> float | None:
    try:
        return float(err.response.headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None


def _error_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, Mapping):
        body = body.get("error", body)
        if isinstance(body, Mapping) and "message" in body:
            return str(body["message"])
    return str(getattr(err, "message", err))
