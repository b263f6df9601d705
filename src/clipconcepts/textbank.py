"""The project's default text bank, text-bank files, and the generic keyword lexicon.

The default bank (``default_textbank``) is composed from the vocabularies written for this project
in ``clipconcepts.textbank_vocab``: for each concept family, hand-written descriptions
first, then its items phrased with its templates, rotating templates over items so the first
phrasings cover every item; each family is capped at ``FAMILY_CAP`` entries so none dominates;
families are interleaved round-robin; duplicates (case/whitespace-insensitive) are removed keeping
the first. Everything is deterministic (no randomness, no set iteration).

``default_lexicon`` maps lowercase words and phrases to a family name, for the offline LLM backend's
keyword baseline: items (leading article dropped), their plurals for countable items, and each
family's generic keywords. Keys may be multi-word phrases; a matcher should prefer the longest.

Every bank the workflow writes carries its provenance in the Parquet schema's metadata
(``bank_provenance``: source, URL, file, its SHA-256 and lines, the texts' digest), which the
report shows; ``textbank.source: authors`` reads the TEXTSPAN authors' file downloaded by
``clipconcepts.textbank_download``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from clipconcepts.textbank_vocab import FAMILY_VOCABS, FamilyVocab, Group

log = logging.getLogger(__name__)

__all__ = [
    "FAMILIES",
    "FAMILY_CAP",
    "PROVENANCE_KEY",
    "TextBankEntry",
    "bank_provenance",
    "dedupe",
    "default_lexicon",
    "default_textbank",
    "read_textbank_file",
    "read_textbank_parquet",
    "read_textbank_provenance",
    "resolve_textbank",
    "write_textbank",
]

FAMILIES: tuple[str, ...] = tuple(vocab.name for vocab in FAMILY_VOCABS)
# 27 families x 140 = 3,780 entries at most; each family is ~3.7% of the bank.
FAMILY_CAP = 140


@dataclass(frozen=True)
class TextBankEntry:
    """One description of a text bank; ``family`` is None for banks read from plain files."""

    text: str
    family: str | None = None


def _dedupe_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def dedupe(texts: Iterable[str]) -> list[str]:
    """Drop duplicates (case- and whitespace-insensitive), keeping the first spelling and order.

    Surrounding whitespace is stripped and inner whitespace runs collapse to one space; empty
    strings are dropped.
    """
    seen: set[str] = set()
    out: list[str] = []
    for text in texts:
        clean = " ".join(text.split())
        key = clean.casefold()
        if clean and key not in seen:
            seen.add(key)
            out.append(clean)
    return out


# ---------------------------------------------------------------------------- composition


def _article(phrase: str) -> str:
    """Indefinite article for ``phrase`` (a/an), by its first sound for the words we use."""
    word = phrase.split(" ", 1)[0].lower()
    if word.startswith(("hdr", "hour", "honest", "heir")):
        return "an"
    if word.startswith(("uni", "uku", "use", "usu", "eu", "one")):
        return "a"
    return "an" if word[:1] in set("aeiou") else "a"


def _render(template: str, item: str, filler: str) -> str:
    text = template.format(x=item, a=f"{_article(item)} {item}", y=filler)
    return text[:1].upper() + text[1:]


def _family_candidates(vocab: FamilyVocab) -> list[str]:
    """Extras, then items phrased round by round (each round gives every item one phrasing)."""
    candidates = list(vocab.extras)
    max_templates = max(len(group.templates) for group in vocab.groups)
    max_fillers = max(max(len(group.fillers), 1) for group in vocab.groups)
    longest = max(len(group.items) for group in vocab.groups)
    for round_ in range(max_templates * max_fillers):
        for i in range(longest):  # interleave groups item by item
            for group in vocab.groups:
                if i >= len(group.items):
                    continue
                template = group.templates[(i + round_) % len(group.templates)]
                filler = (
                    group.fillers[(3 * i + round_) % len(group.fillers)] if group.fillers else ""
                )
                candidates.append(_render(template, group.items[i], filler))
    return candidates


def _family_entries(vocab: FamilyVocab, cap: int) -> list[str]:
    entries = dedupe(_family_candidates(vocab))
    if len(entries) < cap:
        log.debug("text bank family %r has only %d entries (cap %d)", vocab.name, len(entries), cap)
    return entries[:cap]


def default_textbank(cap_per_family: int = FAMILY_CAP) -> list[TextBankEntry]:
    """The project's default bank: >= 3,000 short image descriptions tagged with their family.

    Deterministic: the same list (texts, families, order) on every call and platform.
    """
    per_family = [(vocab.name, _family_entries(vocab, cap_per_family)) for vocab in FAMILY_VOCABS]
    entries: list[TextBankEntry] = []
    seen: set[str] = set()
    for rank in range(max(len(texts) for _, texts in per_family)):
        for family, texts in per_family:
            if rank < len(texts) and _dedupe_key(texts[rank]) not in seen:
                seen.add(_dedupe_key(texts[rank]))
                entries.append(TextBankEntry(texts[rank], family))
    return entries


# ---------------------------------------------------------------------------- lexicon

_IRREGULAR_PLURALS = {
    "man": "men",
    "woman": "women",
    "child": "children",
    "person": "people",
    "foot": "feet",
    "tooth": "teeth",
    "sheep": "sheep",
    "deer": "deer",
    "moose": "moose",
    "bison": "bison",
    "fish": "fish",
    "goldfish": "goldfish",
    "wolf": "wolves",
    "calf": "calves",
    "knife": "knives",
    "leaf": "leaves",
    "shelf": "shelves",
    "scarf": "scarves",
    "hoof": "hooves",
    "octopus": "octopuses",
    "cactus": "cacti",
    "rhinoceros": "rhinoceroses",
    "hippopotamus": "hippopotamuses",
    "crossword puzzle": "crossword puzzles",
    "ellipse": "ellipses",
}


def _plural(phrase: str) -> str:
    """English plural of a phrase's last word (rules enough for our vocabularies)."""
    if phrase in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[phrase]
    head, _, last = phrase.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        plural = _IRREGULAR_PLURALS[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        plural = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def _lexicon_term(item: str) -> str:
    term = " ".join(item.lower().split())
    return re.sub(r"^(a|an|the) ", "", term)


def _group_terms(group: Group) -> list[str]:
    return [_lexicon_term(item) for item in group.items] if group.lexicon else []


def family_terms(vocab: FamilyVocab) -> tuple[list[str], list[str]]:
    """(primary terms: items and keywords; derived terms: plurals of countable items)."""
    primary = [_lexicon_term(k) for k in vocab.keywords]
    derived: list[str] = []
    for group in vocab.groups:
        terms = _group_terms(group)
        primary.extend(terms)
        if group.countable:
            derived.extend(_plural(term) for term in terms)
    return primary, derived


def default_lexicon() -> dict[str, str]:
    """Lowercase word/phrase -> family, from the default bank's vocabularies.

    Primary terms (items, keywords) beat derived ones (plurals); between two families claiming
    the same term at the same level, the earlier family in ``FAMILIES`` keeps it.
    """
    lexicon: dict[str, str] = {}
    terms = [family_terms(vocab) for vocab in FAMILY_VOCABS]
    for level in (0, 1):
        for vocab, both in zip(FAMILY_VOCABS, terms, strict=True):
            for term in both[level]:
                lexicon.setdefault(term, vocab.name)
    return lexicon


# ---------------------------------------------------------------------------- files


def _file_lines(path: Path) -> list[str]:
    """A bank file's description lines: blank lines and ``#`` comments skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def read_textbank_file(path: str | os.PathLike[str]) -> list[TextBankEntry]:
    """Read a text bank: one description per line; blank lines and ``#`` comments skipped.

    Duplicates (case/whitespace-insensitive) are removed keeping the first; families are None.
    Raises FileNotFoundError / ValueError naming the file when it is missing or has no text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text bank file not found: {path}")
    texts = _file_lines(path)
    unique = dedupe(texts)
    if not unique:
        raise ValueError(f"text bank file has no descriptions (only blank/comment lines): {path}")
    if len(unique) < len(texts):
        log.info("text bank %s: dropped %d duplicate lines", path, len(texts) - len(unique))
    return [TextBankEntry(text, None) for text in unique]


_SCHEMA = pa.schema(
    [
        pa.field("text_id", pa.int32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("family", pa.string(), nullable=True),
    ]
)


# Schema metadata key of a bank's provenance (`bank_provenance`), as JSON.
PROVENANCE_KEY = b"clipconcepts.textbank"


def bank_provenance(
    entries: Sequence[TextBankEntry],
    source: str,
    *,
    path: str | os.PathLike[str] | None = None,
    url: str | None = None,
) -> dict:
    """What names a bank in the report: its `source`, the `url` and file it was read from, the
    file's `file_sha256` and description `lines` (blank and ``#`` lines aside), the
    `n_texts` kept (duplicates dropped) and `texts_sha256`, the digest of the texts in order
    (one per line, UTF-8), which identifies the bank of any source."""
    texts = "\n".join(e.text for e in entries).encode("utf-8")
    out: dict = {"source": source, "n_texts": len(entries)}
    out["texts_sha256"] = hashlib.sha256(texts).hexdigest()
    if url:
        out["url"] = url
    if path is not None:
        path = Path(path)
        out["path"] = str(path)
        out["file_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        out["lines"] = len(_file_lines(path))
    return out


def write_textbank(
    entries: Sequence[TextBankEntry],
    path: str | os.PathLike[str],
    provenance: dict | None = None,
) -> Path:
    """Write a bank to Parquet (``text_id:int32, text:str, family:str|null``), atomically;
    `provenance` (`bank_provenance`) goes to the schema metadata."""
    path = Path(path)
    if not entries:
        raise ValueError(f"refusing to write an empty text bank to {path}")
    schema = _SCHEMA
    if provenance is not None:
        schema = schema.with_metadata({PROVENANCE_KEY: json.dumps(provenance, sort_keys=True)})
    table = pa.table(
        {
            "text_id": pa.array(range(len(entries)), pa.int32()),
            "text": pa.array([e.text for e in entries], pa.string()),
            "family": pa.array([e.family for e in entries], pa.string()),
        },
        schema=schema,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_textbank_parquet(path: str | os.PathLike[str]) -> list[TextBankEntry]:
    """Read a bank written by ``write_textbank`` (rows in ``text_id`` order)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text bank Parquet not found: {path}")
    table = pq.read_table(path)
    missing = {"text_id", "text"} - set(table.column_names)
    if missing:
        raise ValueError(f"text bank Parquet {path} lacks column(s) {sorted(missing)}")
    ids = table.column("text_id").to_pylist()
    texts = table.column("text").to_pylist()
    families = (
        table.column("family").to_pylist() if "family" in table.column_names else [None] * len(ids)
    )
    rows = sorted(zip(ids, texts, families, strict=True), key=lambda row: row[0])
    return [TextBankEntry(text, family) for _, text, family in rows]


def read_textbank_provenance(path: str | os.PathLike[str]) -> dict | None:
    """The provenance `write_textbank` stored with a bank (None for a bank written without)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else None


def resolve_textbank(spec: str | os.PathLike[str]) -> list[TextBankEntry]:
    """The bank a config names: ``"default"``, a ``.parquet`` bank, or a text file.

    ``"generate"`` banks are produced by the LLM generation rule, which writes a Parquet bank:
    pass that file's path here.
    """
    if str(spec) == "default":
        return default_textbank()
    if str(spec) == "generate":
        raise ValueError(
            "text bank 'generate' is produced by the generation rule; resolve its Parquet output"
        )
    path = Path(spec)
    if path.suffix == ".parquet":
        return read_textbank_parquet(path)
    return read_textbank_file(path)
