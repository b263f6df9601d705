"""The LLM layer's errors. All are `LLMError` (a RuntimeError), so the CLI reports them in one line.

Two kinds of bad reply are kept apart: transport garbage (a 200 whose body is no chat completion:
truncated JSON, a proxy's HTML page, no `choices`) is a `BadResponseError`, retried like a 5xx and
never stored; a model's off-format answer is re-asked once and stored invalid (see `ask`)."""

from __future__ import annotations


class LLMError(RuntimeError):
    """An LLM call failed for good."""


class LLMConfigError(LLMError, ValueError):
    """A backend is configured wrongly (bad key, missing API key variable, ...)."""


class LLMRequestError(LLMError):
    """The server refused a request (4xx) or kept failing after every retry."""


class TransientLLMError(LLMError):
    """A failure worth retrying (429, 5xx, timeout, connection); `retry_after_s` from the server."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BadResponseError(TransientLLMError):
    """HTTP 200 with a body that is not a chat completion: the server or a proxy in between
    misbehaved; no model answered, so it is retried rather than stored as the model's answer."""


class TooManyInvalidError(LLMError):
    """More of a step's answers stayed invalid than `llm.max_invalid_fraction` allows."""
