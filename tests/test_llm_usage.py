"""What the LLM steps spend: tokens per call in the cache, the steps' usage tables, the dry-run
estimate, costs from the config's price table, and the report's usage section and prompts."""

from __future__ import annotations

import json
import logging
import math

import polars as pl
import pyarrow.parquet as pq
import pytest

from clipconcepts.judging import judge_heads, judge_requests
from clipconcepts.labelling import label_heads, label_requests
from clipconcepts.llm import LLMCache, ask, label_request, make_backend, prompts
from clipconcepts.llm.usage import (
    ASSUMED_LABEL,
    estimate_heads,
    estimate_prompt_tokens,
    estimate_requests,
    usage_frame,
)
from clipconcepts.llm_prices import Price, cost, format_cost, parse_prices
from clipconcepts.report.inputs import ReportInputError
from clipconcepts.report.llm_usage import gather_llm_usage, prompts_body, section_body
from clipconcepts.schemas import LLM_USAGE, LLM_USAGE_PROMPTS_KEY

try:
    from fake_openai_server import server_spec, token_counts
except ImportError:  # tests/ imported as a package
    from tests.fake_openai_server import server_spec, token_counts

SECRET = "sk-test-USAGE-SECRET-987"
KEY_ENV = "CLIPCONCEPTS_TEST_USAGE_KEY"


def _spec(server, **overrides):
    return server_spec(server, KEY_ENV, **{"name": "fake", **overrides})


@pytest.fixture
def backend(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return make_backend(_spec(server))


def _textspans(n_heads: int) -> pl.DataFrame:
    rows = [
        (10, h, r, f"head {h} text {r}" + (" with a cat" if r % 2 == 0 else ""))
        for h in range(n_heads)
        for r in range(5)
    ]
    return pl.DataFrame(rows, schema=["layer", "head", "rank", "text"], orient="row")


def _sums(pairs) -> tuple[int, int]:
    pairs = list(pairs)
    return sum(p for p, _ in pairs), sum(c for _, c in pairs)


def _cache_records(directory):
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*/*.json"))]


# ---------------------------------------------------------------------------- tokens per call
def test_tokens_from_the_servers_usage_are_summed_and_cached(server, backend, tmp_path):
    server.push(("content", "not json"))  # head 0: one re-ask, two calls with usage
    cache = LLMCache(tmp_path / "cache")
    labels = label_heads(_textspans(3), backend, cache)
    assert labels["valid"].all() and server.n_requests == 4
    sent = _sums(server.usages)
    assert sent[0] > 100 and sent[1] > 0  # the fake counts words: real numbers
    counts = cache.stats.get("fake")
    assert (counts.prompt_tokens, counts.completion_tokens) == sent
    assert counts.unknown_usage == 0 and counts.cached_prompt_tokens == 0

    # each answer's file holds the tokens of its calls (the re-asked one: both calls)
    records = _cache_records(tmp_path / "cache")
    assert sorted(r["usage"]["calls"] for r in records) == [1, 1, 2]
    assert (
        _sums((r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"]) for r in records)
        == sent
    )
    reasked = next(r for r in records if r["usage"]["calls"] == 2)
    both = _sums(server.usages[:2])  # one job at a time: the first call and its re-ask
    assert (reasked["usage"]["prompt_tokens"], reasked["usage"]["completion_tokens"]) == both
    assert server.usages[0] == token_counts(server.bodies[0], "not json")

    # a rerun asks nothing, spends nothing and reports what the reused answers cost then
    again = LLMCache(tmp_path / "cache")
    assert label_heads(_textspans(3), backend, again).equals(labels)
    counts = again.stats.get("fake")
    assert server.n_requests == 4 and counts.requests == 0
    assert (counts.prompt_tokens, counts.completion_tokens) == (0, 0)
    assert (counts.cached_prompt_tokens, counts.cached_completion_tokens) == sent
    assert counts.hits == 3


def test_failed_attempts_report_no_tokens(server, backend):
    server.push(("status", 500), ("html", None))  # two transport failures, then the answer
    cache = LLMCache(None)
    assert ask(backend, label_request(["a cat", "a dog"]), cache).valid
    counts = cache.stats.get("fake")
    assert counts.requests == 3 and len(server.usages) == 1
    assert (counts.prompt_tokens, counts.completion_tokens) == server.usages[0]


def test_server_without_usage_and_old_cache_files(server, backend, tmp_path):
    server.report_usage = False
    cache = LLMCache(tmp_path / "cache")
    label_heads(_textspans(2), backend, cache)
    counts = cache.stats.get("fake")
    assert counts.unknown_usage == 2 and counts.prompt_tokens == 0
    assert all(r["usage"] is None for r in _cache_records(tmp_path / "cache"))
    # files written before tokens were recorded (no "usage" key) load as before: 0 calls
    for path in (tmp_path / "cache").glob("*/*.json"):
        record = json.loads(path.read_text())
        del record["usage"]
        path.write_text(json.dumps(record))
    rerun = LLMCache(tmp_path / "cache")
    label_heads(_textspans(2), backend, rerun)
    assert server.n_requests == 2
    assert rerun.stats.get("fake").hits == 2 and rerun.stats.get("fake").unknown_usage == 2


def test_offline_backend_uses_no_tokens():
    offline = make_backend({"backend": "offline", "model": "x"}, lexicon={"cat": "animals"})
    cache = LLMCache(None)
    label_heads(_textspans(2), offline, cache)
    counts = cache.stats.get("offline")
    assert counts.answers == 2 and counts.prompt_tokens == 0 and counts.unknown_usage == 0


def test_usage_frame_is_typed_one_row_per_backend(server, backend):
    cache = LLMCache(None)
    labels = label_heads(_textspans(2), backend, cache)
    judge = make_backend(_spec(server, name="judge-b", model="other-model"))
    judge_heads(labels, _textspans(2), [backend, judge], "per_head", cache)
    frame = usage_frame("judge", [backend, judge], cache.stats)
    assert frame.schema == pl.Schema(LLM_USAGE)
    assert frame["backend"].to_list() == ["fake", "judge-b"]
    assert frame["requests"].to_list() == [4, 2]  # 2 labels + 2 verdicts; 2 verdicts
    assert int(frame["prompt_tokens"].sum()) == _sums(server.usages)[0]


# ---------------------------------------------------------------------------- the CLI steps
def _cli(*argv: str) -> int:
    from clipconcepts.cli import main

    return main(list(argv))


def _label_argv(server, tmp_path, *extra):
    spans = tmp_path / "textspans.parquet"
    if not spans.exists():
        _textspans(4).write_parquet(spans)
    return [
        "label",
        "--textspans",
        str(spans),
        "--backend",
        json.dumps(_spec(server)),
        "--cache-dir",
        str(tmp_path / "cache"),
        *extra,
    ]


def test_label_and_judge_write_usage_tables_with_their_prompts(server, backend, tmp_path):
    out, usage = tmp_path / "labels.parquet", tmp_path / "m" / "llm_usage" / "label.parquet"
    assert _cli(*_label_argv(server, tmp_path, "--out", str(out), "--usage-out", str(usage))) == 0
    table = pl.read_parquet(usage)
    assert table.schema == pl.Schema(LLM_USAGE) and table.height == 1
    row = table.row(0, named=True)
    assert (row["step"], row["backend"], row["kind"], row["model"]) == (
        "label",
        "fake",
        "openai_compatible",
        "fake-model",
    )
    assert (row["requests"], row["answers"], row["hits"]) == (4, 4, 0)
    assert (row["prompt_tokens"], row["completion_tokens"]) == _sums(server.usages)
    recorded = json.loads(pq.read_schema(usage).metadata[LLM_USAGE_PROMPTS_KEY.encode()])
    assert recorded["label"]["system"] == prompts.LABEL_SYSTEM
    assert recorded["label"]["fingerprint"] == prompts.prompt_fingerprint("label")
    assert len(recorded["label"]["examples"]) == len(prompts.LABEL_EXAMPLES)

    verdicts, judge_usage = tmp_path / "verdicts.parquet", tmp_path / "judge_usage.parquet"
    argv = ["judge", "--labels", str(out), "--textspans", str(tmp_path / "textspans.parquet")]
    argv += ["--judges", json.dumps([_spec(server)]), "--mode", "per_text"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--out", str(verdicts)]
    assert _cli(*argv, "--usage-out", str(judge_usage)) == 0
    judged = pl.read_parquet(judge_usage).row(0, named=True)
    assert judged["step"] == "judge" and judged["requests"] == 20  # 4 heads x 5 texts
    assert judged["prompt_tokens"] == _sums(server.usages[4:])[0]
    meta = json.loads(pq.read_schema(judge_usage).metadata[LLM_USAGE_PROMPTS_KEY.encode()])
    assert list(meta) == ["judge_text"]

    # the rerun: 0 calls, every answer reused, the tokens they cost then
    n = server.n_requests
    assert _cli(*_label_argv(server, tmp_path, "--out", str(out), "--usage-out", str(usage))) == 0
    row = pl.read_parquet(usage).row(0, named=True)
    assert server.n_requests == n and (row["requests"], row["hits"], row["prompt_tokens"]) == (
        0,
        4,
        0,
    )
    assert row["cached_prompt_tokens"] == _sums(server.usages[:4])[0]


def test_dry_run_counts_what_is_not_cached_and_asks_nothing(
    server, backend, tmp_path, capsys, monkeypatch
):
    # before anything is cached: every head, no cache folder created, no output written
    out = tmp_path / "labels.parquet"
    assert _cli(*_label_argv(server, tmp_path, "--dry-run", "--out", str(out))) == 0
    text = capsys.readouterr().out
    requests = label_requests(_textspans(4))
    tokens = sum(estimate_prompt_tokens(r.messages) for r in requests)
    assert "4 calls to make" in text and "0 answered by the cache" in text
    assert f"~{tokens:,} prompt" in text and "cost ~unknown" in text
    assert server.n_requests == 0 and not out.exists() and not (tmp_path / "cache").exists()
    # two heads answered: the dry run counts the other two, still asking nothing
    label_heads(_textspans(2), backend, LLMCache(tmp_path / "cache"))
    n = server.n_requests
    prices = json.dumps({"fake": {"prompt_per_1m": 2.5, "completion_per_1m": 10}})
    assert _cli(*_label_argv(server, tmp_path, "--dry-run", "--prices", prices)) == 0
    text = capsys.readouterr().out
    assert "2 calls to make" in text and "2 answered by the cache" in text
    assert "USD" in text and "unknown" not in text
    assert server.n_requests == n
    assert SECRET not in text


def test_estimate_is_chars_over_four_and_matches_what_is_sent(server, backend, tmp_path):
    requests = label_requests(_textspans(3))
    estimate = estimate_requests("label", backend, requests, LLMCache(None))
    per_request = [
        math.ceil(sum(len(m["content"]) for m in r.messages) / 4) + 4 * len(r.messages)
        for r in requests
    ]
    assert estimate.prompt_tokens == sum(per_request)
    # a label answer of typical length: {"label": "Body parts"} -> 6 tokens per request
    assert estimate.completion_tokens == 3 * math.ceil(len('{"label": "Body parts"}') / 4)
    capped = make_backend(_spec(server, max_tokens=2))
    assert estimate_requests("label", capped, requests, LLMCache(None)).completion_tokens == 6
    # the requests the estimate counts are those labelling sends
    cache = LLMCache(None)
    label_heads(_textspans(3), backend, cache)
    assert cache.stats.get("fake").requests == estimate.requests == 3


def test_llm_estimate_step_assumes_labels_before_labelling(server, backend, tmp_path, capsys):
    spans = tmp_path / "spans.parquet"
    _textspans(3).write_parquet(spans)
    judges = json.dumps([_spec(server, name="judge-a"), _spec(server, name="judge-b")])
    prices = json.dumps({"fake": {"prompt_per_1m": 1, "completion_per_1m": 2}})
    argv = ["llm-estimate", "--textspans", str(spans), "--models", "vit", "--labeller"]
    argv += [json.dumps(_spec(server)), "--judges", judges, "--mode", "per_text"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--prices", prices]
    assert _cli(*argv, "--out", str(tmp_path / "estimate.parquet")) == 0
    table = pl.read_parquet(tmp_path / "estimate.parquet")
    assert table["step"].to_list() == ["label", "judge", "judge"]
    assert table["requests"].to_list() == [3, 15, 15]
    assert table["exact"].to_list() == [True, False, False]
    assert table["cost"][0] > 0 and table["cost"][1:].is_null().all()  # judges without a price
    assert "unknown (a backend has no price" in capsys.readouterr().out
    assert server.n_requests == 0
    # with the labels the judge requests are exact, and the cache is consulted
    labels = label_heads(_textspans(3), backend, LLMCache(tmp_path / "cache"))
    judge_heads(labels, _textspans(3), [backend], "per_text", LLMCache(tmp_path / "cache"))
    labels.write_parquet(tmp_path / "labels.parquet")
    estimates = estimate_heads(
        "vit",
        _textspans(3),
        backend,
        [backend],
        "per_text",
        LLMCache(tmp_path / "cache"),
        labels,
    )
    assert [(e.step, e.requests, e.cached, e.exact) for _, e in estimates] == [
        ("label", 0, 3, True),
        ("judge", 0, 15, True),
    ]
    assumed = judge_requests(
        labels.with_columns(label=pl.lit(ASSUMED_LABEL)), _textspans(3), "per_text"
    )
    assert len(assumed) == 15


def test_no_key_in_any_output_or_log(server, backend, tmp_path, caplog, capsys):
    out, usage = tmp_path / "labels.parquet", tmp_path / "usage.parquet"
    with caplog.at_level(logging.DEBUG):
        assert (
            _cli(*_label_argv(server, tmp_path, "--out", str(out), "--usage-out", str(usage))) == 0
        )
        assert _cli(*_label_argv(server, tmp_path, "--dry-run")) == 0
    from clipconcepts.report import build_report

    build_report(
        tmp_path,
        {},
        [],
        tmp_path / "report.html",
        tmp_path / "assets",
        llm_usage=[usage],
        llm_prices={"fake": {"prompt_per_1m": 1, "completion_per_1m": 1}},
    )
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text and SECRET not in capsys.readouterr().out


# ---------------------------------------------------------------------------- prices, report
def test_prices_are_checked_and_a_missing_price_is_unknown():
    prices = parse_prices({"gpt": {"prompt_per_1m": 2.5, "completion_per_1m": 10}})
    assert prices == {"gpt": Price(2.5, 10.0)}
    assert cost(1_000_000, 100_000, prices["gpt"]) == pytest.approx(3.5)
    assert cost(10, 10, None) is None  # tokens without a price: unknown, never 0
    assert cost(0, 0, None) == 0.0  # nothing sent costs nothing
    assert cost(10, 10, None, kind="offline") == 0.0
    assert format_cost(None) == "unknown" and format_cost(3.5, "EUR") == "3.50 EUR"
    with pytest.raises(ValueError, match=r"llm.prices.gpt needs exactly"):
        parse_prices({"gpt": {"input": 1, "output": 2}})
    with pytest.raises(ValueError, match=r"llm.prices.gpt.prompt_per_1m must be a number"):
        parse_prices({"gpt": {"prompt_per_1m": -1, "completion_per_1m": 2}})


def _usage_file(path, backend="gpt", kind="openai", prompts_meta=None, **counts):
    row = {c: 0 for c in LLM_USAGE} | {
        "step": "label",
        "backend": backend,
        "kind": kind,
        "model": "gpt-x",
    }
    row |= counts
    table = pl.DataFrame([row], schema=LLM_USAGE).to_arrow()
    meta = {LLM_USAGE_PROMPTS_KEY: json.dumps(prompts_meta or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def test_report_section_costs_tokens_and_shows_the_prompts_escaped(tmp_path):
    label = prompts.prompt_texts("label")
    label["examples"][0][0][0] = "a <script>alert(1)</script> & co"
    a = _usage_file(
        tmp_path / "vit" / "llm_usage" / "label.parquet",
        prompts_meta={"label": label},
        requests=10,
        answers=10,
        prompt_tokens=2_000_000,
        completion_tokens=100_000,
        cached_prompt_tokens=1_000_000,
        hits=4,
    )
    b = _usage_file(
        tmp_path / "llm_usage" / "textbank.parquet", backend="local", completion_tokens=5
    )
    usage = gather_llm_usage(
        tmp_path,
        [a, b, tmp_path / "absent.parquet"],
        {"gpt": {"prompt_per_1m": 2.5, "completion_per_1m": 10}},
        "EUR",
    )
    assert [f.subject for f in usage.files] == ["vit", "run"]
    assert usage.absent == [tmp_path / "absent.parquet"]
    html = section_body(usage)
    assert "6.00 EUR" in html  # 2M x 2.5 + 0.1M x 10
    assert "2.50 EUR" in html  # the reused answers' cost when asked
    assert "unknown (no price for local in llm.prices)" in html
    assert "2,000,000" in html and "<code>vit</code>" in html
    appendix = prompts_body(usage)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in appendix
    assert "<script>" not in appendix
    assert "Which concept do most of these descriptions share?" in appendix
    assert prompts.prompt_fingerprint("label")[:12] in appendix


def test_report_rejects_a_malformed_usage_table(tmp_path):
    path = tmp_path / "bad.parquet"
    pl.DataFrame({"step": ["label"]}).write_parquet(path)
    with pytest.raises(ReportInputError, match=r"bad.parquet: missing column 'backend'"):
        gather_llm_usage(tmp_path, [path])
    with pytest.raises(ReportInputError, match="llm.prices.x"):
        gather_llm_usage(tmp_path, [], {"x": {"prompt_per_1m": 1}})


def test_report_without_usage_says_so(tmp_path):
    usage = gather_llm_usage(tmp_path, [tmp_path / "m" / "llm_usage" / "label.parquet"])
    assert "no LLM usage tables (1 expected files are missing)" in section_body(usage)
    assert "no prompts recorded" in prompts_body(usage)


def test_textbank_generation_writes_usage_and_dry_runs(server, backend, tmp_path, capsys):
    out, usage = tmp_path / "textbank.parquet", tmp_path / "llm_usage" / "textbank.parquet"
    argv = ["textbank", "--source", "generate", "--generate-n", "4", "--generate-batch", "2"]
    argv += ["--backend", json.dumps(_spec(server)), "--cache-dir", str(tmp_path / "cache")]
    assert _cli(*argv, "--dry-run", "--out", str(out)) == 0
    assert "textbank with fake" in capsys.readouterr().out and not out.exists()
    assert server.n_requests == 0
    assert _cli(*argv, "--usage-out", str(usage), "--out", str(out)) == 0
    row = pl.read_parquet(usage).row(0, named=True)
    assert (row["step"], row["requests"]) == ("textbank", 4)  # 2 batches + 2 of slack
    assert (row["prompt_tokens"], row["completion_tokens"]) == _sums(server.usages)
    meta = json.loads(pq.read_schema(usage).metadata[LLM_USAGE_PROMPTS_KEY.encode()])
    assert list(meta) == ["generate_bank"]


def test_a_price_for_an_unknown_backend_fails_before_anything_runs(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config/demo.yaml").read_text())
    config["llm"]["prices"] = {"gpt-4o-typo": {"prompt_per_1m": 1, "completion_per_1m": 2}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(tmp_path / "bad.yaml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode != 0
    assert "llm.prices names gpt-4o-typo, not in llm.backends" in proc.stdout + proc.stderr
