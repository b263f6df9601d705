"""Content-addressed store of LLM answers, safe to share between jobs and to resume.

Key: sha256 of (backend identity, messages, schema) where the identity holds the backend kind,
model, base_url and sampling parameters, never the API key. Each answer is one small JSON file,
`{dir}/{key[:2]}/{key}.json`, written to a temporary file, fsynced and renamed as soon as it
arrives: a job killed half-way keeps every answer it got, concurrent jobs never see a partial
file, and two jobs answering the same key just write the same answer twice. A file also holds
the tokens its calls used (`usage`, null when the server reported none; absent in files written
before tokens were recorded, which load as before).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clipconcepts.llm.prompts import LLMRequest

log = logging.getLogger(__name__)


def cache_key(identity: Mapping[str, Any], request: LLMRequest) -> str:
    """sha256 (hex) of what determines an answer: backend identity, messages, answer schema."""
    content = {
        "identity": dict(identity),
        "messages": list(request.messages),
        "schema_name": request.schema_name,
        "schema": request.schema,
    }
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class BackendCounts:
    """Counts for one backend. `requests`: API calls sent (retries and re-asks included);
    `answers`: new answers stored; `hits`: answers taken from the cache (or asked twice in one
    batch); `invalid`: answers returned invalid (new or cached); `retries`, `reasks`: what they
    say; `retried_invalid`: answers stored invalid and asked again (`retry_invalid`).

    Tokens, as the server reported them: `prompt_tokens`, `completion_tokens` of the calls sent
    (re-asks included); `cached_prompt_tokens`, `cached_completion_tokens`: what the answers
    taken from the cache used when they were asked (recorded in their files);
    `unknown_usage`: answers, new or cached, whose tokens are not known (a server that reports
    no `usage`, a cache file written before tokens were recorded)."""

    requests: int = 0
    answers: int = 0
    hits: int = 0
    invalid: int = 0
    retries: int = 0
    reasks: int = 0
    retried_invalid: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    unknown_usage: int = 0


class LLMStats:
    """Thread-safe counters per backend name, for logs and output metadata."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, BackendCounts] = defaultdict(BackendCounts)

    def add(self, backend: str, **increments: int) -> None:
        with self._lock:
            counts = self._counts[backend]
            for name, value in increments.items():
                setattr(counts, name, getattr(counts, name) + value)

    def get(self, backend: str) -> BackendCounts:
        with self._lock:
            return BackendCounts(**asdict(self._counts[backend]))

    def total(self) -> BackendCounts:
        with self._lock:
            total = BackendCounts()
            for counts in self._counts.values():
                for name, value in asdict(counts).items():
                    setattr(total, name, getattr(total, name) + value)
            return total

    def as_dict(self) -> dict[str, dict[str, int]]:
        """{backend name: counts, ..., "total": counts}."""
        with self._lock:
            out = {name: asdict(c) for name, c in sorted(self._counts.items())}
        out["total"] = asdict(self.total())
        return out

    def summary(self) -> str:
        t = self.total()
        return (
            f"LLM: {t.requests} requests, {t.answers} new answers, {t.hits} cache hits, "
            f"{t.invalid} invalid, {t.retries} retries, {t.reasks} re-asks, "
            f"{t.retried_invalid} stored-invalid asked again; tokens sent "
            f"{t.prompt_tokens} prompt + {t.completion_tokens} completion"
            + (f" ({t.unknown_usage} answers without token counts)" if t.unknown_usage else "")
        )


class LLMCache:
    """Answers by key under `directory` (None: in memory only, nothing persists).

    `stats` counts what happened through this cache object (one per job). `retry_invalid`: answers
    stored invalid by an earlier job are asked again (see `reask_stored_invalid`)."""

    def __init__(
        self, directory: str | os.PathLike[str] | None, retry_invalid: bool = False
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.retry_invalid = retry_invalid
        self.stats = LLMStats()
        self._memory: dict[str, dict[str, Any]] = {}
        self._written: set[str] = set()  # keys answered through this object
        self._lock = threading.Lock()
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if self.directory is None:
            raise ValueError("this LLM cache lives in memory and has no files")
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record for `key`, or None. An unreadable file counts as missing."""
        if self.directory is None:
            with self._lock:
                return self._memory.get(key)
        path = self.path(key)
        try:
            with path.open(encoding="utf-8") as f:
                record = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as err:
            log.warning("ignoring unreadable LLM cache file %s (%s); asking again", path, err)
            return None
        if record.get("key") != key or "answer" not in record:
            log.warning("ignoring LLM cache file %s: it does not hold an answer for its key", path)
            return None
        return record

    def reask_stored_invalid(self, record: Mapping[str, Any]) -> bool:
        """Whether to ask a stored answer again: with `retry_invalid`, when it is invalid and was
        stored by an earlier job (an answer this job got invalid is final for this job, so each
        invalid answer is asked again at most once per job)."""
        if not self.retry_invalid or record["answer"]["valid"]:
            return False
        with self._lock:
            return record["key"] not in self._written

    def put(self, key: str, record: Mapping[str, Any]) -> None:
        """Store `record` under `key` durably (temp file + fsync + atomic rename)."""
        record = {**record, "key": key}
        with self._lock:
            self._written.add(key)
        if self.directory is None:
            with self._lock:
                self._memory[key] = dict(record)
            return
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, ensure_ascii=False, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it private; answers hold no secret
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        if self.directory is None:
            return len(self._memory)
        return sum(1 for _ in self.directory.glob("*/*.json"))
