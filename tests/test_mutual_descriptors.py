"""The mutual-knowledge descriptor bank: class-name removal, pooling, sources, the offline answer,
the LLM cache (a rerun makes 0 calls) and the `mutual-descriptors` step end to end."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clipconcepts.conceptworld.descriptors import (
    PHRASINGS,
    conceptworld_descriptors,
    value_of,
    values_in_text,
)
from clipconcepts.conceptworld.lexicon import conceptworld_lexicon, families_in_text
from clipconcepts.conceptworld.world import FAMILIES, SYNONYMS, VALUES
from clipconcepts.llm import (
    LLMCache,
    OfflineBackend,
    TooManyInvalidError,
    ask,
    make_backend,
    prompt_fingerprint,
)
from clipconcepts.llm.prompts import DESCRIBE_EXAMPLE, DESCRIBE_TASK
from clipconcepts.mutual import cli as mutual_cli
from clipconcepts.mutual import descriptors as md
from clipconcepts.mutual.descriptors import (
    Descriptor,
    build_descriptor_bank,
    describe_request,
    llm_descriptors,
    pool_descriptors,
    read_descriptor_bank,
    read_descriptor_file,
    strip_class_name,
)

try:
    import fake_openai_server as fake_module
except ImportError:  # tests/ imported as a package
    from tests import fake_openai_server as fake_module

P1 = "What are useful visual features for distinguishing a {} in a photo?"
KEY_ENV = "CLIPCONCEPTS_TEST_LLM_KEY"
SECRET = "sk-test-SECRET456"


# ---------------------------------------------------------------------------- class-name removal
@pytest.mark.parametrize(
    ("text", "classname", "expected"),
    [
        ("tiger's stripes", "tiger", "stripes"),
        ("Tiger’s stripes", "tiger", "stripes"),  # typographic apostrophe, any case
        ("orange fur like a TIGER", "tiger", "orange fur"),
        ("tigers resting in the shade", "tiger", "resting in the shade"),
        ("tigerlike stripes", "tiger", "tigerlike stripes"),  # whole words only
        ("a long ladder on the fire truck's roof", "fire truck", "a long ladder on roof"),
        ("red fire-truck paint", "fire truck", "red paint"),
        ("sharp lawn mower blades", "lawn_mower", "sharp blades"),
        ("  long   striped tail ", "lemur", "long striped tail"),
        ("stripes like a tiger, black and orange", "tiger", "stripes, black and orange"),
    ],
)
def test_strip_class_name(text, classname, expected):
    assert strip_class_name(text, classname) == expected


@pytest.mark.parametrize(
    "text", ["tiger", "Tigers", "a tiger.", "the Tiger's", " (tiger) ", "like a tiger", "of tigers"]
)
def test_a_descriptor_that_is_only_the_class_name_is_dropped(text):
    assert strip_class_name(text, "tiger") is None


def test_pool_dedupes_across_classes_keeping_the_first():
    pool = pool_descriptors(
        [
            ("tiger", ["tiger's stripes", "Orange fur", "tiger", "large paws"]),
            ("lemur", ["ringed  TAIL", "orange   FUR", "stripes", "lemur eyes"]),
            ("cat", ["Ringed tail", "whiskers", "large paws"]),
        ]
    )
    assert [(d.text, d.source_class) for d in pool] == [
        ("stripes", "tiger"),
        ("Orange fur", "tiger"),
        ("large paws", "tiger"),
        ("ringed TAIL", "lemur"),
        ("eyes", "lemur"),
        ("whiskers", "cat"),
    ]
    kept = pool_descriptors(
        [("tiger", ["tiger stripes", "Tiger stripes"])], strip_class_names=False
    )
    assert [d.text for d in kept] == ["tiger stripes"]


# ---------------------------------------------------------------------------- the request
def test_describe_request_uses_p1_and_our_example():
    request = describe_request("  snow  leopard ")
    assert request.task == DESCRIBE_TASK == "describe_class"
    roles = [m["role"] for m in request.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert request.messages[-1]["content"] == P1.format("snow leopard")
    example_class, example_answer = DESCRIBE_EXAMPLE
    assert request.messages[1]["content"] == P1.format(example_class)
    assert json.loads(request.messages[2]["content"]) == {"descriptors": list(example_answer)}
    # the example practises what it preaches: no descriptor names its class
    assert all(strip_class_name(d, example_class) == d for d in example_answer)
    with pytest.raises(ValueError, match="empty"):
        describe_request("  ")


def test_prompt_fingerprint_registered_and_stdlib_only():
    assert len(prompt_fingerprint(DESCRIBE_TASK)) == 64
    assert prompt_fingerprint(DESCRIBE_TASK) != prompt_fingerprint("label")
    # rules/common.smk loads llm/prompts.py on its own (load_light_module) for prompt_hash()
    path = Path(md.__file__).parents[1] / "llm" / "prompts.py"
    spec = importlib.util.spec_from_file_location("_standalone_prompts", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_standalone_prompts"] = module
    try:
        spec.loader.exec_module(module)
        assert module.prompt_fingerprint(DESCRIBE_TASK) == prompt_fingerprint(DESCRIBE_TASK)
    finally:
        del sys.modules["_standalone_prompts"]


# ---------------------------------------------------------------------------- offline backend
LEXICON = {"cat": "Animals", "red": "Colors", "zebra": "Animals", "brick": "Materials"}


def test_offline_answer_is_class_agnostic():
    backend = make_backend({"backend": "offline"}, LEXICON)
    cache = LLMCache(None)
    a = ask(backend, describe_request("cat"), cache)
    b = ask(backend, describe_request("fire truck"), cache)
    assert a.valid and b.valid
    assert a.data == b.data == {"descriptors": sorted(LEXICON)}
    assert "descriptors_sha256" not in backend.identity()

    given = make_backend({"backend": "offline"}, LEXICON, descriptors=["a b", "c"])
    assert ask(given, describe_request("dog"), cache).data == {"descriptors": ["a b", "c"]}
    assert given.identity()["descriptors_sha256"] != OfflineBackend(
        LEXICON, descriptors=["c", "a b"]
    ).identity().get("descriptors_sha256")
    # without a class name to strip, the offline pool is the list itself, once
    pool = llm_descriptors(given, cache, ["dog", "cat", "dog"])
    assert [(d.text, d.source_class) for d in pool] == [("a b", "dog"), ("c", "dog")]


def test_cli_offline_conceptworld_backend_answers_attribute_phrases():
    from clipconcepts.llm.factory import backend_from_spec

    backend = backend_from_spec({"backend": "offline", "lexicon": "conceptworld"})
    assert list(backend.descriptors) == [t for t, _, _ in conceptworld_descriptors()]
    other = backend_from_spec({"backend": "offline", "lexicon": "default"})
    assert list(other.descriptors) == sorted(other.matcher.lexicon)


# ---------------------------------------------------------------------------- a real LLM (fake)
SERVER_REPLY = fake_module.default_reply


def _fake_reply(body):
    """Descriptors that name the asked class, repeat across classes; "ghost" gets an empty list."""
    if body.get("response_format", {}).get("json_schema", {}).get("name") != "class_descriptors":
        return SERVER_REPLY(body)
    asked = [m["content"] for m in body["messages"] if m["role"] == "user"]
    name = next(  # the last P1 turn (the re-ask comes after it)
        m.group(1) for t in reversed(asked) if (m := re.search(r"distinguishing a (.*) in a", t))
    )
    if name == "ghost":
        return json.dumps({"descriptors": ["  "]})
    return json.dumps(
        {"descriptors": [f"{name}'s stripes", "Orange fur", name, f"large {name} paws", "tail"]}
    )


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(fake_module, "default_reply", _fake_reply)
    fake = fake_module.FakeOpenAIServer().start()
    yield fake
    fake.stop()


def _spec(server):
    return {
        "backend": "openai_compatible",
        "model": "fake-model",
        "base_url": server.base_url,
        "api_key_env": KEY_ENV,
        "max_retries": 1,
        "timeout_s": 5,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.01,
        "max_concurrency": 2,
    }


def test_llm_bank_strips_dedupes_and_a_rerun_makes_no_request(server, monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, SECRET)
    classes = ["tiger", "lemur", "fire truck"]
    cache = LLMCache(tmp_path / "cache")
    pool, meta = build_descriptor_bank(
        "llm", classnames=classes, backend=make_backend(_spec(server)), cache=cache
    )
    assert server.n_requests == 3
    assert [(d.text, d.source_class) for d in pool] == [
        ("stripes", "tiger"),
        ("Orange fur", "tiger"),
        ("large paws", "tiger"),
        ("tail", "tiger"),
    ]
    assert meta["source"] == "llm" and meta["n_classes"] == 3 and meta["n_descriptors"] == 4
    assert meta["backend"]["model"] == "fake-model"
    assert meta["prompt_sha256"] == prompt_fingerprint(DESCRIBE_TASK)
    assert SECRET not in json.dumps(meta)
    # the last user turn of every request is P1 for its class
    asked = sorted(b["messages"][-1]["content"] for b in server.bodies)
    assert asked == sorted(P1.format(c) for c in classes)

    again = LLMCache(tmp_path / "cache")
    pool2, _ = build_descriptor_bank(
        "llm", classnames=classes, backend=make_backend(_spec(server)), cache=again
    )
    assert server.n_requests == 3  # all from the cache
    assert again.stats.total().hits == 3 and again.stats.total().requests == 0
    assert pool2 == pool


def test_llm_empty_answers_are_invalid_and_counted(server, monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend = make_backend(_spec(server))
    cache = LLMCache(tmp_path / "cache")
    pool = llm_descriptors(backend, cache, ["ghost", "tiger"], max_invalid_fraction=0.5)
    assert [d.source_class for d in pool] == ["tiger"] * 4
    assert cache.stats.total().reasks == 1 and cache.stats.total().invalid == 1
    with pytest.raises(TooManyInvalidError, match="class descriptions"):
        llm_descriptors(backend, cache, ["ghost", "tiger"], max_invalid_fraction=0.2)


# ---------------------------------------------------------------------------- file source
def test_file_source_text_csv_parquet(tmp_path):
    txt = tmp_path / "d.txt"
    txt.write_text("# my descriptors\nlong tail\n\n  Long  Tail \nstriped fur\n   # indented\n")
    assert read_descriptor_file(txt) == ["long tail", "striped fur"]
    frame = pl.DataFrame(
        {"text": ["wet nose", None, "Wet nose", "  ", "floppy ears"], "n": range(5)}
    )
    frame.write_parquet(tmp_path / "d.parquet")
    frame.write_csv(tmp_path / "d.csv")
    for name in ("d.parquet", "d.csv"):
        assert read_descriptor_file(tmp_path / name) == ["wet nose", "floppy ears"]
    pool, meta = build_descriptor_bank("file", path=txt)
    assert pool == [Descriptor("long tail"), Descriptor("striped fur")]
    assert meta["source"] == "file" and meta["n_classes"] is None and meta["backend"] is None


def test_file_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mutual\.descriptors\.path"):
        read_descriptor_file(tmp_path / "missing.txt")
    pl.DataFrame({"descriptor": ["a"]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="no 'text' column"):
        read_descriptor_file(tmp_path / "bad.parquet")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="no descriptors"):
        read_descriptor_file(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match=r"mutual\.descriptors\.path"):
        build_descriptor_bank("file", path=None)
    with pytest.raises(ValueError, match="unknown descriptor source"):
        build_descriptor_bank("web")


# ---------------------------------------------------------------------------- concept world
def test_conceptworld_phrases_name_one_family_and_one_value():
    rows = conceptworld_descriptors()
    texts = [t for t, _, _ in rows]
    assert len(set(texts)) == len(texts)
    n_words = sum(len(words) for family in FAMILIES for words in SYNONYMS[family])
    assert len(rows) == 2 * n_words
    lexicon = conceptworld_lexicon()
    for text, family, value in rows:
        assert families_in_text(text, lexicon) == {family}, text
        assert values_in_text(text) == {(family, value)}, text
        assert value_of(text) == (family, value)
        assert value in VALUES[family]
    # every value and synonym is phrased, twice
    for family in FAMILIES:
        for value, words in zip(VALUES[family], SYNONYMS[family], strict=True):
            for word in words:
                phrased = [t for t, f, v in rows if (f, v) == (family, value) and word in t]
                assert len(phrased) >= len(PHRASINGS[family]), (family, word)
    assert value_of("a red object on a dotted background") is None  # two values
    assert value_of("a photo of a dog") is None


def test_conceptworld_source_has_family_and_value():
    pool, meta = build_descriptor_bank("conceptworld")
    assert [(d.text, d.family, d.value) for d in pool] == conceptworld_descriptors()
    assert all(d.source_class is None for d in pool)
    assert meta["source"] == "conceptworld" and meta["n_descriptors"] == len(pool)


# ---------------------------------------------------------------------------- the step end to end
def _conceptworld_set(root: Path, family: str, classnames: list[str]) -> Path:
    """A tiny concept-world-like zero-shot set: `root/<family>/manifest.parquet` + classes.json."""
    folder = root / family
    rows = []
    for i in range(2 * len(classnames)):
        rel = f"img/{i:03d}.png"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4, 3), 10 * i, np.uint8)).save(folder / rel)
        rows.append({"image_id": f"im{i}", "path": rel, "label": i % len(classnames)})
    pl.DataFrame(rows).write_parquet(folder / "manifest.parquet")
    classes = {"classnames": classnames, "templates": ["a {} object."], "family": family}
    (folder / "classes.json").write_text(json.dumps(classes))
    return root


def _run_step(argv: list[str]) -> None:
    help_text, add_args, run = mutual_cli.STEPS["mutual-descriptors"]
    parser = argparse.ArgumentParser(description=help_text)
    add_args(parser)
    run(parser.parse_args(argv))


def test_step_end_to_end_llm_offline_equals_conceptworld_source(tmp_path, monkeypatch):
    root = _conceptworld_set(tmp_path / "cw", "color", ["red", "green", "blue"])
    spec = json.dumps({"kind": "conceptworld", "family": "color", "root": str(root)})
    backend = json.dumps({"backend": "offline", "lexicon": "conceptworld"})
    calls = []
    complete = OfflineBackend.complete

    def counted(self, request, messages):
        calls.append(request.payload.get("category"))
        return complete(self, request, messages)

    monkeypatch.setattr(OfflineBackend, "complete", counted)
    common = ["--dataset", "color", "--dataset-spec", spec]
    llm_args = ["--source", "llm", "--backend", backend, "--cache-dir", str(tmp_path / "cache")]
    _run_step([*llm_args, *common, "--out", str(tmp_path / "llm.parquet")])
    assert calls == ["red", "green", "blue"]
    _run_step([*llm_args, *common, "--out", str(tmp_path / "llm2.parquet")])
    assert len(calls) == 3  # the rerun made 0 calls
    _run_step(["--source", "conceptworld", *common, "--out", str(tmp_path / "cw.parquet")])

    schema = pq.read_schema(tmp_path / "llm.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [
        ("descriptor_id", "int32"),
        ("text", "string"),
        ("source_class", "string"),
        ("family", "string"),
        ("value", "string"),
        ("classes", "list<element: string>"),
    ]
    llm, meta = read_descriptor_bank(tmp_path / "llm.parquet")
    cw, cw_meta = read_descriptor_bank(tmp_path / "cw.parquet")
    assert llm.column("descriptor_id").to_pylist() == list(range(llm.num_rows))
    columns = ["text", "family", "value"]
    assert llm.select(columns).to_pylist() == cw.select(columns).to_pylist()
    assert llm.num_rows == len(conceptworld_descriptors())
    assert set(llm.column("source_class").to_pylist()) == {"red"}  # all first met with "red"
    assert pq.read_table(tmp_path / "llm2.parquet").equals(pq.read_table(tmp_path / "llm.parquet"))
    assert meta["source"] == "llm" and meta["n_classes"] == 3 and meta["dataset"] == "color"
    assert meta["backend"]["kind"] == "offline" and "descriptors_sha256" in meta["backend"]
    assert cw_meta["source"] == "conceptworld" and cw_meta["backend"] is None


def test_step_file_source_and_missing_file(tmp_path):
    (tmp_path / "d.txt").write_text("fluffy tail\nred collar\n")
    out = tmp_path / "bank.parquet"
    _run_step(["--source", "file", "--path", str(tmp_path / "d.txt"), "--out", str(out)])
    bank, meta = read_descriptor_bank(out)
    assert bank.column("text").to_pylist() == ["fluffy tail", "red collar"]
    assert bank.column("family").to_pylist() == [None, None]
    assert meta["path"] == str(tmp_path / "d.txt")
    with pytest.raises(FileNotFoundError, match=r"mutual\.descriptors\.path"):
        _run_step(["--source", "file", "--path", str(tmp_path / "nope.txt"), "--out", str(out)])
    with pytest.raises(ValueError, match="backend"):
        _run_step(["--source", "llm", "--out", str(out)])


def test_step_writes_its_llm_usage_and_dry_runs_without_asking(tmp_path, capsys):
    root = _conceptworld_set(tmp_path / "cw", "color", ["red", "green", "blue"])
    spec = json.dumps({"kind": "conceptworld", "family": "color", "root": str(root)})
    backend = json.dumps({"backend": "offline", "lexicon": "conceptworld"})
    argv = ["--source", "llm", "--backend", backend, "--cache-dir", str(tmp_path / "cache")]
    argv += ["--dataset", "color", "--dataset-spec", spec]
    _run_step([*argv, "--dry-run", "--out", str(tmp_path / "dry.parquet")])
    assert "3 calls to make, 0 answered by the cache" in capsys.readouterr().out
    assert not (tmp_path / "dry.parquet").exists() and not (tmp_path / "cache").exists()
    usage = tmp_path / "usage.parquet"
    _run_step([*argv, "--usage-out", str(usage), "--out", str(tmp_path / "bank.parquet")])
    row = pl.read_parquet(usage).row(0, named=True)
    assert (row["step"], row["kind"], row["answers"], row["prompt_tokens"]) == (
        "mutual-descriptors",
        "offline",
        3,
        0,
    )
    meta = pq.read_schema(usage).metadata[b"clipconcepts.prompts"]
    assert json.loads(meta)[DESCRIBE_TASK]["user"] == P1.replace("{}", "{category}")
    _run_step([*argv, "--dry-run", "--out", str(tmp_path / "dry.parquet")])
    assert "0 calls to make, 3 answered by the cache" in capsys.readouterr().out
