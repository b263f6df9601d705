"""The LLM layer against a fake OpenAI-compatible server, driven through the real `openai` client."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import polars as pl
import pytest

from clipconcepts.judging import judge_heads
from clipconcepts.labelling import label_heads
from clipconcepts.llm import (
    LLMCache,
    LLMConfigError,
    LLMRequestError,
    TooManyInvalidError,
    ask,
    cache_key,
    check_invalid_share,
    label_request,
    make_backend,
    prompt_fingerprint,
    prompts,
)

try:
    from fake_openai_server import server_spec
except ImportError:  # tests/ imported as a package
    from tests.fake_openai_server import server_spec

SECRET = "sk-test-SECRET123"
KEY_ENV = "CLIPCONCEPTS_TEST_LLM_KEY"


@pytest.fixture
def backend(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return make_backend(_spec(server))


def _spec(server, **overrides):
    return server_spec(server, KEY_ENV, **{"max_concurrency": 2, **overrides})


def _textspans(n_heads: int) -> pl.DataFrame:
    rows = [
        (9 + h // 12, h % 12, r, f"head {h} text {r}" + (" with a cat" if r % 2 == 0 else ""))
        for h in range(n_heads)
        for r in range(5)
    ]
    return pl.DataFrame(rows, schema=["layer", "head", "rank", "text"], orient="row")


def test_labels_through_server_then_rerun_makes_no_request(server, backend, tmp_path):
    spans = _textspans(3)
    cache = LLMCache(tmp_path / "cache")
    labels = label_heads(spans, backend, cache)
    assert server.n_requests == 3
    assert labels["label"].to_list() == ["Animals"] * 3
    assert labels["valid"].all()
    assert labels.schema["layer"] == pl.Int16
    assert labels["model"].to_list() == ["fake-model"] * 3
    # the request: real client, structured output, 5 examples + the head's 5 texts, key as bearer
    body = server.bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == prompts.LABEL_SCHEMA
    assert body["temperature"] == 0 and body["seed"] == 0
    assert len(body["messages"]) == 1 + 2 * len(prompts.LABEL_EXAMPLES) + 1
    assert any(
        "5. head 0 text 4 with a cat\nWhich" in b["messages"][-1]["content"] for b in server.bodies
    )
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"

    rerun_cache = LLMCache(tmp_path / "cache")
    again = label_heads(spans, backend, rerun_cache)
    assert server.n_requests == 3
    assert again.equals(labels)
    assert rerun_cache.stats.total().hits == 3 and rerun_cache.stats.total().requests == 0


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_status_then_success(server, backend, status):
    server.push(("status", status))
    cache = LLMCache(None)
    answer = ask(backend, label_request(["a", "b", "c", "d", "e"]), cache)
    assert answer.valid and answer.data == {"label": "Animals"}
    assert server.n_requests == 2
    counts = cache.stats.get(backend.name)
    assert (counts.requests, counts.retries, counts.answers) == (2, 1, 1)


def test_always_500_fails_clearly_after_retries(server, backend, tmp_path):
    server.push(*[("status", 500)] * 10)
    cache = LLMCache(tmp_path / "cache")
    with pytest.raises(LLMRequestError, match=r"4 attempts.*HTTP 500"):
        ask(backend, label_request(["a"]), cache)
    assert server.n_requests == 4  # 1 + max_retries
    assert len(cache) == 0  # a failure is not an answer


def test_client_error_fails_at_once(server, backend):
    server.push(("status", 400))
    with pytest.raises(LLMRequestError, match="HTTP 400: scripted HTTP 400"):
        ask(backend, label_request(["a"]), LLMCache(None))
    assert server.n_requests == 1


def test_timeout_is_retried(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend = make_backend(_spec(server, timeout_s=0.2))
    server.push(("sleep", 1.0))
    answer = ask(backend, label_request(["a"]), LLMCache(None))
    assert answer.valid
    assert server.n_requests == 2


def test_malformed_answer_is_reasked_once(server, backend):
    server.push(("content", "The label is Animals."))
    cache = LLMCache(None)
    answer = ask(backend, label_request(["a", "b"]), cache)
    assert answer.valid and answer.data == {"label": "Animals"}
    assert server.n_requests == 2
    reask = server.bodies[1]["messages"]
    assert reask[-2] == {"role": "assistant", "content": "The label is Animals."}
    assert "not JSON" in reask[-1]["content"]
    assert cache.stats.get(backend.name).reasks == 1


def test_wrong_fields_twice_is_recorded_invalid_and_cached(server, backend, tmp_path):
    server.push(("content", '{"name": "Animals"}'), ("content", "{not json"))
    cache = LLMCache(tmp_path / "cache")
    labels = label_heads(_textspans(1), backend, cache)
    assert server.n_requests == 2
    assert labels["valid"].to_list() == [False] and labels["label"].to_list() == [None]
    record = json.loads(cache.path(labels["cache_key"][0]).read_text())
    assert record["answer"]["valid"] is False
    assert record["answer"]["replies"] == ['{"name": "Animals"}', "{not json"]
    assert "not JSON" in record["answer"]["error"]
    assert cache.stats.total().invalid == 1
    # a rerun keeps the recorded invalid answer without asking again
    rerun = LLMCache(tmp_path / "cache")
    assert label_heads(_textspans(1), backend, rerun)["valid"].to_list() == [False]
    assert server.n_requests == 2 and rerun.stats.total().invalid == 1


def test_per_head_judging_checks_list_length(server, backend):
    spans = _textspans(1)
    labels = pl.DataFrame({"layer": [9], "head": [0], "label": ["Cats"], "valid": [True]})
    server.push(("content", '{"aligned": [true, false]}'), ("content", '{"aligned": [true]}'))
    verdicts = judge_heads(labels, spans, [backend], "per_head", LLMCache(None))
    assert verdicts["aligned"].to_list() == [None] * 5
    assert not verdicts["valid"].any()


def test_judging_per_text_and_per_head_agree(server, backend):
    spans = _textspans(2)
    labels = pl.DataFrame(
        {"layer": [9, 9], "head": [0, 1], "label": ["Cats", "Cats"], "valid": [True, True]}
    )
    per_text = judge_heads(labels, spans, [backend], "per_text", LLMCache(None))
    assert server.n_requests == 10
    per_head = judge_heads(labels, spans, [backend], "per_head", LLMCache(None))
    assert server.n_requests == 12
    assert per_text["aligned"].to_list() == [True, False, True, False, True] * 2
    assert per_head["aligned"].to_list() == per_text["aligned"].to_list()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_interrupted_run_resumes_with_remaining_calls(server, monkeypatch, tmp_path, concurrency):
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend = make_backend(_spec(server, max_concurrency=concurrency))
    spans, k = _textspans(8), 3
    server.fail_after = k
    with pytest.raises(LLMRequestError, match="HTTP 400"):
        label_heads(spans, backend, LLMCache(tmp_path / "cache"))
    answered = len(LLMCache(tmp_path / "cache"))
    assert answered == k  # every answer that arrived was stored
    server.fail_after = None
    before = server.n_requests
    cache = LLMCache(tmp_path / "cache")
    labels = label_heads(spans, backend, cache)
    assert server.n_requests - before == 8 - k
    assert labels["valid"].all() and cache.stats.total().hits == k


def test_api_key_reaches_no_file_log_or_pickle(server, backend, tmp_path):
    log_file = tmp_path / "logs" / "llm.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        server.push(("status", 429), ("content", "oops"))
        cache = LLMCache(tmp_path / "results" / "llm_cache")
        labels = label_heads(_textspans(2), backend, cache)
        labels.write_parquet(tmp_path / "results" / "labels.parquet")
        verdicts = judge_heads(labels, _textspans(2), [backend], "per_text", cache)
        verdicts.write_parquet(tmp_path / "results" / "verdicts.parquet")
        (tmp_path / "results" / "stats.json").write_text(json.dumps(cache.stats.as_dict()))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10 and log_file.stat().st_size > 0
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET.encode() not in pickle.dumps(backend)
    assert SECRET not in repr(backend) and SECRET not in json.dumps(backend.identity())
    assert pickle.loads(pickle.dumps(backend)).identity() == backend.identity()


def test_missing_key_names_the_variable(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    backend = make_backend(_spec(server))
    with pytest.raises(LLMConfigError, match=KEY_ENV):
        ask(backend, label_request(["a"]), LLMCache(None))
    assert server.n_requests == 0


def test_compatible_server_without_key_and_json_object_mode(server):
    spec = _spec(server, response_format="json_object")
    del spec["api_key_env"]
    answer = ask(make_backend(spec), label_request(["a"]), LLMCache(None))
    assert answer.valid
    assert server.bodies[0]["response_format"] == {"type": "json_object"}
    assert server.headers[0]["authorization"] == "Bearer not-needed"


def test_cache_key_tracks_what_shapes_the_answer(server):
    request = label_request(["a", "b"])
    base = make_backend(_spec(server)).identity()
    key = cache_key(base, request)
    assert key == cache_key(make_backend(_spec(server)).identity(), label_request(["a", "b"]))
    assert key != cache_key({**base, "temperature": 0.7}, request)
    assert key != cache_key({**base, "model": "other"}, request)
    assert key != cache_key(base, label_request(["a", "c"]))
    # timeouts and retries do not change answers, so they do not change keys
    assert key == cache_key(
        make_backend(_spec(server, timeout_s=9, max_retries=0)).identity(), request
    )
    assert len(prompt_fingerprint("label")) == 64
    assert prompt_fingerprint("label") != prompt_fingerprint("judge_text")


def test_bad_config_is_named():
    with pytest.raises(LLMConfigError, match="unknown LLM backend 'gpt'"):
        make_backend({"backend": "gpt"})
    with pytest.raises(LLMConfigError, match="temprature"):
        make_backend({"backend": "openai", "temprature": 0})
    with pytest.raises(LLMConfigError, match="base_url"):
        make_backend({"backend": "openai_compatible", "model": "m"})
    with pytest.raises(LLMConfigError, match="response_format"):
        make_backend({"backend": "openai", "response_format": "xml"})
    with pytest.raises(LLMConfigError, match="lexicon"):
        make_backend({"backend": "offline"})


def test_cache_ignores_corrupt_file(tmp_path: Path, server, backend):
    cache = LLMCache(tmp_path)
    request = label_request(["x"])
    key = cache_key(backend.identity(), request)
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_text('{"key": "trunc')
    assert ask(backend, request, cache).valid
    assert server.n_requests == 1
    assert json.loads(cache.path(key).read_text())["key"] == key


def test_identical_requests_in_a_batch_are_asked_once(server, backend):
    texts = ["a cat", "a dog", "a cat", "a bird", "a cow"]
    spans = pl.DataFrame(
        {
            "layer": [9] * 5 + [10] * 5,
            "head": [0] * 10,
            "rank": list(range(5)) * 2,
            "text": texts * 2,
        }
    )
    labels = pl.DataFrame(
        {"layer": [9, 10], "head": [0, 0], "label": ["Cats"] * 2, "valid": [True] * 2}
    )
    cache = LLMCache(None)
    verdicts = judge_heads(labels, spans, [backend], "per_text", cache)
    assert server.n_requests == 4  # 4 distinct (label, text) pairs among 10 texts
    assert verdicts["aligned"].to_list() == [True, False, True, False, False] * 2
    assert cache.stats.total().hits == 6


# ---------------------------------------------------------------------------------------------
# Misbehaving servers (issue 8, part 3): transport garbage is retried, never recorded as an answer.

GARBAGE = {
    "truncated JSON": ("truncated", None),
    "HTML page": ("html", None),
    "empty body": ("raw", ("application/json", "")),
    "empty body, no type": ("raw", (None, "")),
    "JSON list": ("payload", [1, 2]),
    "empty object": ("payload", {}),
    "no choices": ("payload", {"id": "x", "choices": []}),
    "choice without message": ("payload", {"choices": [{"index": 0, "message": None}]}),
}


@pytest.mark.parametrize("fault", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_200_is_retried_not_reasked(server, backend, tmp_path, fault):
    server.push(fault)
    cache = LLMCache(tmp_path / "cache")
    answer = ask(backend, label_request(["a", "b"]), cache)
    assert answer.valid and answer.data == {"label": "Animals"}
    assert server.n_requests == 2
    # the second request repeats the first: garbage is not a model answer to argue with
    assert server.bodies[1]["messages"] == server.bodies[0]["messages"]
    counts = cache.stats.get(backend.name)
    assert (counts.retries, counts.reasks, counts.invalid) == (1, 0, 0)
    record = json.loads(cache.path(answer.cache_key).read_text())
    assert record["answer"]["replies"] == ['{"label": "Animals"}']


@pytest.mark.parametrize("fault", [("truncated", None), ("html", None), ("payload", {})])
def test_garbage_to_the_end_fails_naming_the_server_and_records_nothing(
    server, monkeypatch, tmp_path, fault
):
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend = make_backend(_spec(server, max_retries=1))
    server.push(fault, fault)
    cache = LLMCache(tmp_path / "cache")
    with pytest.raises(LLMRequestError) as info:
        ask(backend, label_request(["a"]), cache)
    message = str(info.value)
    assert "HTTP 200" in message and "2 attempts" in message
    assert server.base_url in message and "'openai_compatible:fake-model'" in message
    assert SECRET not in message
    assert len(cache) == 0 and server.n_requests == 2


def test_connection_error_names_the_base_url(server, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend = make_backend(_spec(server, max_retries=1))
    server.push(("drop", None), ("drop", None))
    with caplog.at_level(logging.WARNING), pytest.raises(LLMRequestError) as info:
        ask(backend, label_request(["a"]), LLMCache(None))
    assert "connection error" in str(info.value)
    assert server.base_url in str(info.value)
    assert server.base_url in caplog.text  # the retry warning too


def test_timeout_names_the_base_url(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend = make_backend(_spec(server, timeout_s=0.2, max_retries=0))
    server.push(("sleep", 0.6))
    with pytest.raises(LLMRequestError, match="timed out after 0.2 s") as info:
        ask(backend, label_request(["a"]), LLMCache(None))
    assert server.base_url in str(info.value)


def test_retry_invalid_reasks_answers_stored_invalid(server, backend, tmp_path):
    spans = _textspans(2)
    server.push(("content", "nope"), ("content", "still nope"))
    first = label_heads(spans, make_backend(_spec(server, max_concurrency=1)), LLMCache(tmp_path))
    assert first["valid"].to_list() == [False, True] and server.n_requests == 3
    # by default a stored invalid answer is final
    assert not label_heads(spans, backend, LLMCache(tmp_path))["valid"].all()
    assert server.n_requests == 3
    cache = LLMCache(tmp_path, retry_invalid=True)
    again = label_heads(spans, backend, cache)
    assert again["valid"].all() and server.n_requests == 4  # only the invalid one is asked
    assert cache.stats.total().retried_invalid == 1 and cache.stats.total().hits == 1
    record = json.loads(cache.path(again["cache_key"][0]).read_text())
    assert record["answer"]["valid"] is True  # the file now holds the good answer


def test_retry_invalid_asks_once_per_job(server, backend, tmp_path):
    server.push(*[("content", "nope")] * 4)
    cache = LLMCache(tmp_path, retry_invalid=True)
    request = label_request(["a"])
    assert not ask(backend, request, cache).valid
    assert not ask(backend, request, cache).valid  # invalid in this very job: not asked again
    assert server.n_requests == 2


def test_invalid_share_limit_is_strictly_more_than(backend):
    check_invalid_share(backend, 1, 10, "labels", 0.1)  # exactly the share: accepted
    check_invalid_share(backend, 0, 0, "labels", 0.0)
    check_invalid_share(backend, 9, 10, "labels", None)  # no limit
    with pytest.raises(TooManyInvalidError, match=r"2 of 10 labels \(20%\)"):
        check_invalid_share(backend, 2, 10, "labels", 0.1)
    with pytest.raises(LLMConfigError, match="max_invalid_fraction"):
        check_invalid_share(backend, 0, 10, "labels", 1.5)


# ---------------------------------------------------------------------------------------------
# The CLI steps: invalid-share guard, --retry-invalid, statistics logged on failure too.


def _cli(*argv: str) -> int:
    from clipconcepts.cli import main

    return main(list(argv))


def _label_argv(server, tmp_path, *extra: str) -> list[str]:
    spans = tmp_path / "textspans.parquet"
    if not spans.exists():
        _textspans(3).write_parquet(spans)
    spec = json.dumps(_spec(server, max_concurrency=1))
    return [
        "label",
        "--textspans",
        str(spans),
        "--backend",
        spec,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "labels.parquet"),
        *extra,
    ]


def test_label_step_fails_above_the_invalid_share_then_retry_invalid_fixes_it(
    server, monkeypatch, tmp_path, caplog
):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.push(("content", "nope"), ("content", "nope"))  # head 1: invalid after the re-ask
    with caplog.at_level(logging.INFO):
        assert _cli(*_label_argv(server, tmp_path, "--max-invalid-fraction", "0.1")) == 1
    assert "1 of 3 labels (33%) are invalid" in caplog.text
    assert server.base_url in caplog.text and "retry_invalid" in caplog.text
    assert "LLM calls:" in caplog.text
    assert not (tmp_path / "labels.parquet").exists()
    assert len(LLMCache(tmp_path / "cache")) == 3  # every answer is kept
    # accepting the share writes the output without a call
    argv = _label_argv(server, tmp_path, "--max-invalid-fraction", "0.5")
    assert _cli(*argv) == 0 and server.n_requests == 4
    assert pl.read_parquet(tmp_path / "labels.parquet")["valid"].sum() == 2
    # re-asking the invalid answer makes one call and fixes it
    assert _cli(*_label_argv(server, tmp_path, "--retry-invalid", "true")) == 0
    assert server.n_requests == 5
    assert pl.read_parquet(tmp_path / "labels.parquet")["valid"].all()
    assert SECRET not in caplog.text


def test_judge_step_fails_above_the_invalid_share(server, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    _textspans(2).write_parquet(tmp_path / "spans.parquet")
    labels = pl.DataFrame({"layer": [9, 9], "head": [0, 1], "label": ["Cats"] * 2})
    labels.with_columns(valid=pl.lit(True)).write_parquet(tmp_path / "labels.parquet")
    server.push(("content", "nope"), ("content", "nope"))
    judges = json.dumps([_spec(server, max_concurrency=1, name="judge-a")])
    argv = ["judge", "--labels", str(tmp_path / "labels.parquet")]
    argv += ["--textspans", str(tmp_path / "spans.parquet"), "--judges", judges]
    argv += ["--mode", "per_head", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--out", str(tmp_path / "verdicts.parquet"), "--max-invalid-fraction", "0.2"]
    with caplog.at_level(logging.INFO):
        assert _cli(*argv) == 1
    assert "'judge-a'" in caplog.text and "5 of 10 verdicts (50%) are invalid" in caplog.text
    assert "LLM calls:" in caplog.text
    assert not (tmp_path / "verdicts.parquet").exists()


def test_llm_stats_are_logged_when_the_step_fails(server, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.fail_after = 1  # the second call gets HTTP 400: the step fails
    with caplog.at_level(logging.INFO):
        assert _cli(*_label_argv(server, tmp_path)) == 1
    assert "HTTP 400" in caplog.text
    assert "LLM calls: LLM: 2 requests, 1 new answers" in caplog.text


def test_textbank_step_fails_above_the_invalid_share_then_retry_invalid_fixes_it(
    server, monkeypatch, tmp_path, caplog
):
    monkeypatch.setenv(KEY_ENV, SECRET)
    spec = json.dumps(_spec(server, max_concurrency=1))
    out = tmp_path / "textbank.parquet"
    argv = ["textbank", "--source", "generate", "--generate-n", "4", "--generate-batch", "2"]
    argv += ["--backend", spec, "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    server.push(("content", "nope"), ("content", "nope"))  # 1 of the 4 batches stays invalid
    with caplog.at_level(logging.INFO):
        assert _cli(*argv, "--max-invalid-fraction", "0.2") == 1
    assert "1 of 4 text-bank batches (25%) are invalid" in caplog.text
    assert "LLM calls:" in caplog.text and not out.exists()
    assert _cli(*argv, "--retry-invalid", "true") == 0
    assert server.n_requests == 6  # 4 batches + 1 re-ask, then only the invalid batch again
    assert len(pl.read_parquet(out)) == 4
