"""LLM backends (openai, OpenAI-compatible servers, offline lexicon) and the one path every
question takes: cache look-up, call with retries, schema check, one re-ask, durable store.

The transport (the `Backend` base with its retries, the `openai` client, the API key) is in
`transport`, the errors in `errors`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import jsonschema
from tqdm.auto import tqdm

from clipconcepts.llm.cache import LLMCache, cache_key
from clipconcepts.llm.errors import LLMConfigError, TooManyInvalidError
from clipconcepts.llm.http import Backend, OpenAIBackend, Reply
from clipconcepts.llm.prompts import (
    DESCRIBE_TASK,
    JUDGE_HEAD_TASK,
    JUDGE_TEXT_TASK,
    LABEL_TASK,
    LLMRequest,
    Message,
    check_answer,
    reask_messages,
)

log = logging.getLogger(__name__)

BACKEND_KINDS = ("openai", "openai_compatible", "offline")
RESPONSE_FORMATS = ("json_schema", "json_object")
UNCLEAR_LABEL = "unclear"

DEFAULTS: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "name": None,
    "base_url": None,
    "api_key_env": "OPENAI_API_KEY",
    "temperature": 0,
    "seed": 0,
    "max_tokens": None,
    "response_format": "json_schema",
    "max_retries": 5,
    "timeout_s": 60,
    "backoff_base_s": 1.0,
    "backoff_max_s": 60.0,
    "max_concurrency": 4,
}


@dataclass(frozen=True)
class LLMAnswer:
    """The outcome of one request: `data` is the parsed JSON when `valid`; `raw` is the last reply's
    text, kept also (with `error`) when the reply stayed unusable after the re-ask."""

    data: dict[str, Any] | None
    raw: str
    valid: bool
    error: str | None
    cache_key: str
    cached: bool

    @classmethod
    def from_record(cls, record: Mapping[str, Any], cached: bool) -> LLMAnswer:
        a = record["answer"]
        return cls(a["data"], a["raw"], bool(a["valid"]), a["error"], record["key"], cached)


# ---------------------------------------------------------------------------------------------
# The offline backend

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _words(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


class LexiconMatcher:
    """Finds lexicon words and phrases (lowercase, whole words) in texts. A text word also
    matches a lexicon word when it is that word plus "s" or "es" (simple plurals)."""

    def __init__(self, lexicon: Mapping[str, str]) -> None:
        if not lexicon:
            raise LLMConfigError(
                "the offline LLM backend needs a non-empty lexicon (word -> family)"
            )
        self.lexicon = {" ".join(_words(w)): str(f).strip() for w, f in lexicon.items()}
        if "" in self.lexicon or any(not f for f in self.lexicon.values()):
            raise LLMConfigError("the lexicon holds an empty word or family")
        self._by_first: dict[str, list[tuple[list[str], str]]] = {}
        for phrase, family in self.lexicon.items():
            tokens = phrase.split()
            self._by_first.setdefault(tokens[0], []).append((tokens, family))
        for entries in self._by_first.values():
            entries.sort(key=lambda e: -len(e[0]))  # longest phrase wins at a position
        self._family_by_name = {f.lower(): f for f in self.lexicon.values()}

    @staticmethod
    def _stems(word: str) -> list[str]:
        stems = [word]
        if word.endswith("es"):
            stems.append(word[:-2])
        if word.endswith("s"):
            stems.append(word[:-1])
        return stems

    def _matches(self, words: list[str], i: int, tokens: list[str]) -> bool:
        if i + len(tokens) > len(words):
            return False
        return all(
            t in self._stems(w) for w, t in zip(words[i : i + len(tokens)], tokens, strict=True)
        )

    def families(self, text: str) -> list[str]:
        """Families of the lexicon hits in `text`, in order of appearance."""
        words, hits, i = _words(text), [], 0
        while i < len(words):
            step = 1
            for stem in self._stems(words[i]):
                match = next(
                    (e for e in self._by_first.get(stem, ()) if self._matches(words, i, e[0])), None
                )
                if match is not None:
                    hits.append(match[1])
                    step = len(match[0])
                    break
            i += step
        return hits

    def family_of_label(self, label: str) -> str | None:
        """The family a label names: a family name (any case) or a lexicon word; else None."""
        norm = " ".join(_words(label))
        if norm in self._family_by_name:
            return self._family_by_name[norm]
        return self.lexicon.get(norm)


class OfflineBackend(Backend):
    """Deterministic, no network. Labelling: the family most of the texts belong to (a text
    belongs to the family of its first lexicon hit; texts without a hit do not vote; ties go to
    the family met first; no hit at all gives "unclear"). A declared coarse concept (`concepts`:
    name -> the families it covers) is named instead when it covers more voting texts than any
    one family (a tie goes to the family: the finer name). Judging: a text fits a label when it
    holds a lexicon word of the label's family, or of one of the concept's families. Describing
    a class: the same `descriptors` for every class (class-agnostic; default: the lexicon's
    entries, sorted)."""

    kind = "offline"

    def __init__(
        self,
        lexicon: Mapping[str, str],
        name: str | None = None,
        descriptors: Sequence[str] | None = None,
        concepts: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.matcher = LexiconMatcher(lexicon)
        self.concepts = {
            str(c): tuple(str(f) for f in fams) for c, fams in (concepts or {}).items()
        }
        known = set(self.matcher.lexicon.values())
        for concept, families in self.concepts.items():
            if len(families) < 2 or not set(families) <= known or concept in known:
                raise LLMConfigError(
                    f"offline LLM backend: concept {concept!r} must cover at least two lexicon "
                    f"families and not be one itself (got {list(families)})"
                )
        blob = json.dumps(
            self.matcher.lexicon
            if not self.concepts
            else {"lexicon": self.matcher.lexicon, "concepts": self.concepts},
            sort_keys=True,
            ensure_ascii=False,
        )
        self.lexicon_sha256 = hashlib.sha256(blob.encode()).hexdigest()
        self.model = f"lexicon-{self.lexicon_sha256[:12]}"
        self.name = name or "offline"
        # Given descriptors enter the identity (and so the cache keys); the default ones follow
        # from the lexicon, which is in it already.
        self.descriptors_sha256: str | None = None
        if descriptors is None:
            self.descriptors = tuple(sorted(self.matcher.lexicon))
        else:
            self.descriptors = tuple(str(d) for d in descriptors)
            if not self.descriptors:
                raise LLMConfigError("the offline LLM backend got an empty list of descriptors")
            blob = json.dumps(self.descriptors, ensure_ascii=False)
            self.descriptors_sha256 = hashlib.sha256(blob.encode()).hexdigest()

    def identity(self) -> dict[str, Any]:
        identity = {"kind": self.kind, "model": self.model, "lexicon_sha256": self.lexicon_sha256}
        if self.descriptors_sha256 is not None:
            identity["descriptors_sha256"] = self.descriptors_sha256
        return identity

    def label(self, texts: Sequence[str]) -> str:
        votes = [fams[0] for fams in map(self.matcher.families, texts) if fams]
        if not votes:
            return UNCLEAR_LABEL
        counts = Counter(votes)  # insertion order = first occurrence, so ties go to the first
        best = max(counts, key=lambda family: counts[family])
        covered = {c: sum(counts[f] for f in fams) for c, fams in self.concepts.items()}
        coarse = max(covered, key=lambda c: covered[c], default=None)
        if coarse is not None and covered[coarse] > counts[best]:
            return coarse
        return best

    def aligned(self, label: str, text: str) -> bool:
        concept = self.concepts.get(" ".join(_words(label)))
        if concept is not None:
            return bool(set(concept) & set(self.matcher.families(text)))
        family = self.matcher.family_of_label(label)
        return family is not None and family in self.matcher.families(text)

    def complete(self, request: LLMRequest, messages: Sequence[Message]) -> Reply:
        """The answer, using no tokens (no model is asked)."""
        return Reply(self._answer(request), prompt_tokens=0, completion_tokens=0)

    def _answer(self, request: LLMRequest) -> str:
        p = request.payload
        if request.task == LABEL_TASK:
            return json.dumps({"label": self.label(p["texts"])})
        if request.task == JUDGE_TEXT_TASK:
            return json.dumps({"aligned": self.aligned(p["label"], p["text"])})
        if request.task == JUDGE_HEAD_TASK:
            return json.dumps({"aligned": [self.aligned(p["label"], t) for t in p["texts"]]})
        if request.task == DESCRIBE_TASK:
            return json.dumps({"descriptors": list(self.descriptors)})
        raise LLMConfigError(f"the offline LLM backend cannot answer {request.task!r} requests")


# key -> (integer?, minimum)
_NUMBER_LIMITS = {
    "max_retries": (True, 0),
    "max_concurrency": (True, 1),
    "timeout_s": (False, 0.001),
    "backoff_base_s": (False, 0.0),
    "backoff_max_s": (False, 0.0),
}


def make_backend(
    spec: Mapping[str, Any],
    lexicon: Mapping[str, str] | None = None,
    descriptors: Sequence[str] | None = None,
    concepts: Mapping[str, Sequence[str]] | None = None,
) -> Backend:
    """A backend from a config mapping (keys: `backend` plus those of `DEFAULTS`); `lexicon`,
    `descriptors` and `concepts` are the offline backend's (see `OfflineBackend`), ignored by the
    others."""
    if "backend" not in spec:
        raise LLMConfigError(f"LLM config needs a 'backend' key, one of {BACKEND_KINDS}")
    kind = spec["backend"]
    if kind not in BACKEND_KINDS:
        raise LLMConfigError(
            f"unknown LLM backend {kind!r} (config key 'backend'); known: {BACKEND_KINDS}"
        )
    unknown = sorted(set(spec) - set(DEFAULTS) - {"backend"})
    if unknown:
        raise LLMConfigError(f"unknown LLM config keys {unknown}; known: {sorted(DEFAULTS)}")
    if kind == "offline":
        if lexicon is None:
            raise LLMConfigError("the offline LLM backend needs a lexicon (word -> concept family)")
        return OfflineBackend(
            lexicon, name=spec.get("name"), descriptors=descriptors, concepts=concepts
        )

    cfg = {**DEFAULTS, **spec}
    if kind == "openai_compatible":
        cfg["api_key_env"] = spec.get("api_key_env")  # no key unless one is named
        if not cfg["base_url"]:
            raise LLMConfigError("the openai_compatible LLM backend needs 'base_url'")
    elif not cfg["api_key_env"]:
        raise LLMConfigError("the openai LLM backend needs 'api_key_env' (e.g. OPENAI_API_KEY)")
    if not cfg["model"] or not isinstance(cfg["model"], str):
        raise LLMConfigError(f"LLM config key 'model' must be a model name, got {cfg['model']!r}")
    if cfg["response_format"] not in RESPONSE_FORMATS:
        raise LLMConfigError(
            f"LLM config key 'response_format' is {cfg['response_format']!r}; use one of {RESPONSE_FORMATS}"
        )
    for key, (integer, low) in _NUMBER_LIMITS.items():
        value = cfg[key]
        types = int if integer else (int, float)
        if not isinstance(value, types) or isinstance(value, bool) or value < low:
            what = "an integer" if integer else "a number"
            raise LLMConfigError(f"LLM config key {key!r} must be {what} >= {low}, got {value!r}")
    return OpenAIBackend(
        kind=kind,
        model=cfg["model"],
        name=cfg["name"],
        base_url=cfg["base_url"],
        api_key_env=cfg["api_key_env"],
        temperature=cfg["temperature"],
        seed=cfg["seed"],
        max_tokens=cfg["max_tokens"],
        response_format=cfg["response_format"],
        max_retries=cfg["max_retries"],
        timeout_s=float(cfg["timeout_s"]),
        backoff_base_s=float(cfg["backoff_base_s"]),
        backoff_max_s=float(cfg["backoff_max_s"]),
        max_concurrency=cfg["max_concurrency"],
    )


# ---------------------------------------------------------------------------------------------
# Asking: cache, call, check, re-ask once, store.

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_answer(request: LLMRequest, raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """(data, None) when `raw` is JSON that fits the request's schema and checks; else (None, why)."""
    text = raw.strip()
    fenced = _FENCE.match(text)  # some compatible servers wrap JSON in a code fence
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"the reply is not JSON ({err.msg} at character {err.pos})"
    errors = sorted(jsonschema.Draft202012Validator(request.schema).iter_errors(data), key=str)
    if errors:
        return None, f"the reply does not fit the schema: {errors[0].message}"
    problem = check_answer(request, data)
    return (None, problem) if problem else (data, None)


def ask(backend: Backend, request: LLMRequest, cache: LLMCache) -> LLMAnswer:
    """The answer to `request`: from the cache, or asked (re-asked once if unusable) and stored.

    Transport failures that outlast the retries raise LLMRequestError; an unusable answer does
    not raise: it comes back (and is cached) with `valid=False`. A cached invalid answer is final
    unless the cache was opened with `retry_invalid` (then it is asked again, once per job)."""
    key = cache_key(backend.identity(), request)
    record = cache.get(key)
    if record is not None and cache.reask_stored_invalid(record):
        log.info("%s: asking again an answer stored invalid (%s)", backend.name, key[:12])
        cache.stats.add(backend.name, retried_invalid=1)
        record = None
    if record is not None:
        answer = LLMAnswer.from_record(record, cached=True)
        cache.stats.add(backend.name, hits=1, invalid=int(not answer.valid))
        usage = record_usage(record)
        if usage is None:
            cache.stats.add(backend.name, unknown_usage=1)
        else:
            cache.stats.add(
                backend.name,
                cached_prompt_tokens=usage["prompt_tokens"],
                cached_completion_tokens=usage["completion_tokens"],
            )
        return answer

    replies = [backend.call(request, request.messages, cache.stats)]
    data, error = parse_answer(request, replies[0].text)
    if error is not None:
        log.warning("%s: unusable answer (%s); asking once more", backend.name, error)
        cache.stats.add(backend.name, reasks=1)
        messages = reask_messages(request, replies[0].text, error)
        replies.append(backend.call(request, messages, cache.stats))
        data, error = parse_answer(request, replies[-1].text)
        if error is not None:
            log.warning("%s: answer recorded as invalid: %s", backend.name, error)
    answer = LLMAnswer(data, replies[-1].text, error is None, error, key, cached=False)
    usage = None
    if all(r.has_usage for r in replies):
        usage = {
            "calls": len(replies),
            "prompt_tokens": sum(r.prompt_tokens for r in replies),
            "completion_tokens": sum(r.completion_tokens for r in replies),
        }
    cache.put(
        key,
        {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "backend": backend.name,
            "identity": backend.identity(),
            "request": {
                "task": request.task,
                "schema_name": request.schema_name,
                "messages": list(request.messages),
            },
            "answer": {
                "data": data,
                "raw": replies[-1].text,
                "valid": answer.valid,
                "error": error,
                "replies": [r.text for r in replies],
            },
            # tokens of the calls that made this answer (re-ask included); null: not reported
            "usage": usage,
        },
    )
    cache.stats.add(
        backend.name, answers=1, invalid=int(not answer.valid), unknown_usage=int(usage is None)
    )
    return answer


def record_usage(record: Mapping[str, Any]) -> dict[str, int] | None:
    """The tokens a cached answer used when it was asked ({prompt_tokens, completion_tokens});
    None for files written before tokens were recorded or from a server that reports none."""
    usage = record.get("usage")
    if not isinstance(usage, Mapping):
        return None
    counts = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens")}
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        return counts
    return None


def ask_many(
    backend: Backend,
    requests: Sequence[LLMRequest],
    cache: LLMCache,
    max_concurrency: int | None = None,
    desc: str = "LLM",
) -> list[LLMAnswer]:
    """Answers in the order of `requests`. Identical requests are asked once; real backends run
    up to `max_concurrency` (default: the backend's) calls at a time. On a failure the pending
    calls are cancelled, the running ones finish (and are cached), and the error propagates."""
    identity = backend.identity()
    keys = [cache_key(identity, r) for r in requests]
    unique = dict(zip(keys, requests, strict=True))  # first request per key
    duplicates = len(keys) - len(unique)
    if duplicates:
        cache.stats.add(backend.name, hits=duplicates)
    workers = 1 if backend.kind == "offline" else (max_concurrency or backend.max_concurrency)
    bar = tqdm(total=len(unique), desc=f"{desc} ({backend.name})", unit="call", leave=False)
    answers: dict[str, LLMAnswer] = {}
    try:
        if workers <= 1:
            for key, request in unique.items():
                answers[key] = ask(backend, request, cache)
                bar.update()
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(ask, backend, r, cache): k for k, r in unique.items()}
                try:
                    for future in as_completed(futures):
                        answers[futures[future]] = future.result()
                        bar.update()
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    finally:
        bar.close()
    return [answers[k] for k in keys]


def check_invalid_share(
    backend: Backend, n_invalid: int, n_total: int, what: str, max_fraction: float | None
) -> None:
    """Raise TooManyInvalidError when more than `max_fraction` of a step's `n_total` answers
    (`what`: "labels", "verdicts", ...) from `backend` stayed invalid; None: no limit."""
    if max_fraction is not None and not 0 <= max_fraction <= 1:
        raise LLMConfigError(f"llm.max_invalid_fraction must be in [0, 1], got {max_fraction}")
    if max_fraction is None or n_invalid == 0 or n_invalid / n_total <= max_fraction:
        return
    raise TooManyInvalidError(
        f"{backend.describe()}: {n_invalid} of {n_total} {what} ({n_invalid / n_total:.0%}) "
        f"are invalid, more than llm.max_invalid_fraction = {max_fraction:g}. Every answer stays "
        "in the LLM cache; set llm.retry_invalid: true to ask the invalid ones again, or raise "
        "llm.max_invalid_fraction to accept them"
    )
