"""The descriptor bank: class-agnostic short visual descriptors of a dataset (mutual knowledge).

Sammani & Deligiannis (2024, section 3.1) ask an LLM, per class, for the visual features that
tell it apart (their prompt P1), strip the class's name from the answers and pool them, without
repetitions, into one set D that any image or class can be described with. Sources:

- `llm`: one request per class (`describe_request`: our system text, one in-context example of
  our own, then P1), asked through the LLM cache, so a rerun makes 0 calls. The class's own name
  is removed from its descriptors (whole words, any case, with a possessive or plural ending:
  "a tiger's stripes" -> "stripes"); a descriptor left empty is dropped. The offline backend
  answers every class with the same list, so nothing in it comes from the class and nothing is
  stripped (that would cut the concept world's values out of its phrases).
- `file`: a user file, one descriptor per line (blank lines, `#` comments skipped) or a CSV /
  Parquet table with a `text` column.
- `conceptworld`: the concept world's attribute phrases (`conceptworld_descriptors`), the bank
  `llm` gives with the offline backend and lexicon `conceptworld`, without a cache.

The pool is de-duplicated (case and spacing), keeping the first occurrence: class order, then
answer order. Output: Parquet `descriptor_id:int32, text:str, source_class:str|null,
family:str|null, value:str|null, classes:list<str>|null` (family and value: the concept world's
attribute a descriptor names; classes: every class whose answer gave it, or every class of the
dataset for class-agnostic banks, null when unknown = every class; banks written before the
column existed are read as all-null), with JSON metadata under the schema key "clipconcepts".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from clipconcepts.llm.backends import ask_many, check_invalid_share
from clipconcepts.llm.cache import LLMCache
from clipconcepts.llm.http import Backend
from clipconcepts.llm.prompts import (
    DESCRIBE_EXAMPLE,
    DESCRIBE_SCHEMA,
    DESCRIBE_SYSTEM,
    DESCRIBE_TASK,
    DESCRIBE_USER,
    LLMRequest,
    prompt_fingerprint,
)

log = logging.getLogger(__name__)

SOURCES = ("llm", "file", "conceptworld")
PATH_KEY = "mutual.descriptors.path"
META_KEY = b"clipconcepts"

SCHEMA = pa.schema(
    [
        pa.field("descriptor_id", pa.int32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source_class", pa.string(), nullable=True),
        pa.field("family", pa.string(), nullable=True),
        pa.field("value", pa.string(), nullable=True),
        pa.field("classes", pa.list_(pa.string()), nullable=True),
    ]
)
OPTIONAL_COLUMNS = ("classes",)  # absent from banks written before it existed


@dataclass(frozen=True)
class Descriptor:
    """One bank entry; `source_class`: the first class it came from (llm source); `classes`:
    every class whose answer gave it (None: unknown, read as every class)."""

    text: str
    source_class: str | None = None
    family: str | None = None
    value: str | None = None
    classes: tuple[str, ...] | None = None


# ---------------------------------------------------------------------------- the LLM request
def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_request(category: str) -> LLMRequest:
    """The request for one class: system text, the in-context example, then prompt P1."""
    category = _one_line(category)
    if not category:
        raise ValueError("a class name to describe is empty")
    example_class, example_answer = DESCRIBE_EXAMPLE
    messages = (
        {"role": "system", "content": DESCRIBE_SYSTEM},
        {"role": "user", "content": DESCRIBE_USER.format(category=example_class)},
        {"role": "assistant", "content": json.dumps({"descriptors": list(example_answer)})},
        {"role": "user", "content": DESCRIBE_USER.format(category=category)},
    )
    payload = {"category": category}
    return LLMRequest(DESCRIBE_TASK, messages, "class_descriptors", DESCRIBE_SCHEMA, payload)


# ---------------------------------------------------------------------------- post-processing
_APOSTROPHE = "['\N{RIGHT SINGLE QUOTATION MARK}]"
# Words left dangling at the end once the name is cut ("the red paint of a fire truck").
_DANGLING = re.compile(
    r"(?:(?:^|\s+)(?:a|an|the|of|like|for|with|from|on|in|to|as|at|by|than|and|or))+(?=[,;:]|$)",
    re.IGNORECASE,
)
_EDGE_PUNCTUATION = " ,.;:!?-\N{EN DASH}\N{EM DASH}'\"\N{RIGHT SINGLE QUOTATION MARK}"


def _name_pattern(classname: str) -> re.Pattern[str] | None:
    """Whole-word, any-case match of a class name (its words joined by spaces, underscores or
    hyphens), with an optional article before it and a possessive or plural ending."""
    tokens = [t for t in re.split(r"[\s_]+", str(classname)) if t]
    if not tokens:
        return None
    name = r"[\s_-]+".join(re.escape(t) for t in tokens)
    ending = rf"(?:{_APOSTROPHE}s|s{_APOSTROPHE}|{_APOSTROPHE}|es|s)?"
    article = r"(?:(?<!\w)(?:a|an|the)\s+)?"
    return re.compile(rf"{article}(?<!\w){name}{ending}(?!\w)", re.IGNORECASE)


def strip_class_name(text: str, classname: str) -> str | None:
    """`text` without `classname` (whole words, any case; "a tiger's stripes" -> "stripes"),
    whitespace, edge punctuation and words left dangling at the end ("of", "like", ...) tidied;
    None when nothing but the name (and punctuation) was left."""
    clean = _one_line(text)
    pattern = _name_pattern(classname)
    if pattern is not None:
        clean, n = pattern.subn(" ", clean)
        if n:
            clean = re.sub(r"\s+([,.;:!?)])", r"\1", _one_line(clean))
            clean = re.sub(r"\(\s*\)", " ", clean)
            clean = _one_line(clean).strip(_EDGE_PUNCTUATION)
            clean = _DANGLING.sub("", clean).strip(_EDGE_PUNCTUATION)
    return clean if re.search(r"\w", clean) else None


def dedupe_key(text: str) -> str:
    return _one_line(text).casefold()


def pool_descriptors(
    answers: Iterable[tuple[str | None, Sequence[str]]], strip_class_names: bool = True
) -> list[Descriptor]:
    """One pool from (class, descriptors) pairs: class names stripped (optionally; a None class
    strips nothing), blanks dropped, duplicates (case and spacing) dropped keeping the first
    (class order, then answer order), each with the class it first came from and every class
    whose answer gave it (`classes`; None when no class is named)."""
    first: dict[str, tuple[str, str | None]] = {}
    classes: dict[str, list[str]] = {}
    for classname, texts in answers:
        for text in texts:
            strip = strip_class_names and classname is not None
            clean = strip_class_name(text, classname) if strip else _one_line(text)
            if not clean:
                continue
            key = dedupe_key(clean)
            source = None if classname is None else str(classname)
            first.setdefault(key, (clean, source))
            named = classes.setdefault(key, [])
            if source is not None and source not in named:
                named.append(source)
    return [
        Descriptor(clean, source_class=source, classes=tuple(classes[key]) or None)
        for key, (clean, source) in first.items()
    ]


def llm_descriptors(
    backend: Backend,
    cache: LLMCache,
    classnames: Sequence[str],
    max_concurrency: int | None = None,
    max_invalid_fraction: float | None = None,
    strip_class_names: bool | None = None,
) -> list[Descriptor]:
    """Ask `backend` (through `cache`) for every class's descriptors and pool them. Invalid
    answers are skipped with a warning; more than `max_invalid_fraction` of them raises
    TooManyInvalidError. `strip_class_names`: None strips unless the backend is offline."""
    classnames = [str(c) for c in classnames]
    if not classnames:
        raise ValueError("no class names to ask descriptors for")
    requests = [describe_request(c) for c in classnames]
    answers = ask_many(backend, requests, cache, max_concurrency, desc="class descriptors")
    invalid = sum(not a.valid for a in answers)
    if invalid:
        log.warning(
            "%d of %d class-descriptor answers were invalid and skipped", invalid, len(answers)
        )
    check_invalid_share(backend, invalid, len(answers), "class descriptions", max_invalid_fraction)
    if strip_class_names is None:
        strip_class_names = backend.kind != "offline"
    valid = [
        (c, a.data["descriptors"]) for c, a in zip(classnames, answers, strict=True) if a.valid
    ]
    pool = pool_descriptors(valid, strip_class_names)
    if backend.kind == "offline":  # one class-agnostic answer: it describes every class
        pool = with_classes(pool, classnames)
    return pool


def with_classes(pool: Sequence[Descriptor], classnames: Sequence[str] | None) -> list[Descriptor]:
    """`pool` with every descriptor naming all of `classnames` (class-agnostic banks); None
    leaves `classes` unknown (read as every class)."""
    named = tuple(str(c) for c in classnames) if classnames else None
    return [replace(d, classes=named) for d in pool]


# ---------------------------------------------------------------------------- other sources
def read_descriptor_file(path: str | Path) -> list[str]:
    """Descriptors from a user file: one per line (blank lines and `#` comments skipped), or a
    `.csv` / `.parquet` table with a `text` column; de-duplicated keeping the first."""
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"descriptor file not found: {path} (config key {PATH_KEY})")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):
        frame = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
        if "text" not in frame.columns:
            raise ValueError(
                f"descriptor table {path} has no 'text' column (columns: {frame.columns}; "
                f"config key {PATH_KEY})"
            )
        texts = [str(t) for t in frame["text"].drop_nulls().to_list()]
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        texts = [line for line in lines if not line.lstrip().startswith("#")]
    pool = pool_descriptors([(None, texts)], strip_class_names=False)
    if not pool:
        raise ValueError(f"descriptor file {path} holds no descriptors (config key {PATH_KEY})")
    return [d.text for d in pool]


def with_conceptworld_values(pool: Sequence[Descriptor]) -> list[Descriptor]:
    """`pool` with each descriptor's concept-world family and value, where it names one."""
    from clipconcepts.conceptworld.descriptors import value_of

    out = []
    for d in pool:
        found = value_of(d.text) if d.family is None else (d.family, d.value)
        family, value = found if found is not None else (None, None)
        out.append(replace(d, family=family, value=value))
    return out


def dataset_classnames(name: str, spec: dict) -> list[str]:
    """A dataset's class names, as the `classifier` step finds them: from its files for folder
    sets (imagefolder, manifest, conceptworld), from the shipped lists otherwise."""
    from clipconcepts.data.zeroshot import build_zeroshot_dataset, classnames_of, dataset_options

    options = dataset_options(name, spec)
    if options["kind"] in ("imagefolder", "manifest", "conceptworld"):
        return list(build_zeroshot_dataset(**options).classnames)
    return list(classnames_of(options["kind"]))


# ---------------------------------------------------------------------------- the bank
def build_descriptor_bank(
    source: str,
    *,
    classnames: Sequence[str] | None = None,
    backend: Backend | None = None,
    cache: LLMCache | None = None,
    path: str | Path | None = None,
    concept_world: bool = False,
    max_concurrency: int | None = None,
    max_invalid_fraction: float | None = None,
) -> tuple[list[Descriptor], dict[str, Any]]:
    """The bank's entries and its metadata (source, n_classes, backend identity, ...).
    `concept_world`: fill family/value from the text (the `conceptworld` source always has them)."""
    meta: dict[str, Any] = {"source": source, "n_classes": None, "backend": None}
    if source == "llm":
        if backend is None or cache is None or classnames is None:
            raise ValueError("the llm descriptor source needs a backend, a cache and class names")
        pool = llm_descriptors(
            backend, cache, classnames, max_concurrency, max_invalid_fraction=max_invalid_fraction
        )
        meta["n_classes"] = len(classnames)
        meta["backend"] = {"name": backend.name, **backend.identity()}
        meta["task"] = DESCRIBE_TASK
        meta["prompt_sha256"] = prompt_fingerprint(DESCRIBE_TASK)
    elif source == "file":
        if not path:
            raise ValueError(f"the file descriptor source needs the config key {PATH_KEY}")
        pool = with_classes([Descriptor(t) for t in read_descriptor_file(path)], classnames)
        meta["path"] = str(path)
    elif source == "conceptworld":
        from clipconcepts.conceptworld.descriptors import conceptworld_descriptors

        pool = [Descriptor(t, None, f, v) for t, f, v in conceptworld_descriptors()]
        pool = with_classes(pool, classnames)
        concept_world = True
    else:
        raise ValueError(f"unknown descriptor source {source!r}; choose from {SOURCES}")
    if concept_world:
        pool = with_conceptworld_values(pool)
    if not pool:
        raise ValueError(f"the {source} descriptor source gave no descriptors")
    meta["n_descriptors"] = len(pool)
    return pool, meta


def descriptor_table(pool: Sequence[Descriptor], meta: dict[str, Any] | None = None) -> pa.Table:
    """The bank as an Arrow table (`SCHEMA`), `meta` as JSON under the schema key "clipconcepts"."""
    table = pa.table(
        {
            "descriptor_id": pa.array(range(len(pool)), pa.int32()),
            "text": pa.array([d.text for d in pool], pa.string()),
            "source_class": pa.array([d.source_class for d in pool], pa.string()),
            "family": pa.array([d.family for d in pool], pa.string()),
            "value": pa.array([d.value for d in pool], pa.string()),
            "classes": pa.array(
                [None if d.classes is None else list(d.classes) for d in pool],
                pa.list_(pa.string()),
            ),
        },
        schema=SCHEMA,
    )
    return table.replace_schema_metadata({META_KEY: json.dumps(meta or {}, sort_keys=True)})


def write_descriptor_bank(
    pool: Sequence[Descriptor], path: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write the bank to Parquet atomically; an empty bank is refused."""
    from clipconcepts.io import write_table

    if not pool:
        raise ValueError(f"refusing to write an empty descriptor bank to {path}")
    write_table(descriptor_table(pool, meta), path)
    return Path(path)


def read_descriptor_bank(path: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    """A bank written by `write_descriptor_bank`, in `descriptor_id` order, and its metadata."""
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise FileNotFoundError(f"descriptor bank not found: {path}")
    table = pq.read_table(path)
    missing = sorted(set(SCHEMA.names) - set(table.column_names) - set(OPTIONAL_COLUMNS))
    if missing:
        raise ValueError(f"descriptor bank {path} lacks columns {missing}")
    if "classes" not in table.column_names:  # an older bank: every class, unknown
        table = table.append_column(
            SCHEMA.field("classes"), pa.nulls(table.num_rows, pa.list_(pa.string()))
        )
    meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    return table.sort_by("descriptor_id"), meta
