"""Building what an LLM step uses from its options: a backend from its spec (the offline one
with its lexicon and descriptor answers), and the answer cache with its call statistics."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

log = logging.getLogger("clipconcepts")


def resolve_lexicon(name: str | None) -> dict[str, str]:
    """Offline backend lexicon: `default`, `conceptworld` or a JSON file of word -> family."""
    if name in (None, "", "default"):
        from clipconcepts.textbank import default_lexicon

        return default_lexicon()
    if name == "conceptworld":
        from clipconcepts.conceptworld.lexicon import conceptworld_lexicon

        return conceptworld_lexicon()
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"lexicon file not found: {path} (llm backend key 'lexicon')")
    return json.loads(path.read_text())


def offline_descriptors(lexicon: str | None) -> list[str] | None:
    """The offline backend's class-agnostic descriptor answer for a named lexicon: the concept
    world's attribute phrases for `conceptworld`; None (the lexicon's own entries) otherwise."""
    if lexicon != "conceptworld":
        return None
    from clipconcepts.conceptworld.descriptors import conceptworld_descriptors

    return [text for text, _, _ in conceptworld_descriptors()]


def declared_concepts(lexicon: str | None) -> dict[str, tuple[str, ...]] | None:
    """Coarse concepts the offline labeller may name: the concept world declares its own
    (`conceptworld.lexicon.CONCEPTS`); other lexicons declare none."""
    if lexicon != "conceptworld":
        return None
    from clipconcepts.conceptworld.lexicon import conceptworld_concepts

    return conceptworld_concepts()


def backend_from_spec(spec: dict):
    """The backend an `llm.backends.<name>` spec describes (secrets come from the environment)."""
    from clipconcepts.llm.backends import make_backend

    spec = dict(spec)
    if spec.get("backend") != "offline":
        return make_backend(spec)
    name = spec.pop("lexicon", None)
    return make_backend(
        spec, resolve_lexicon(name), offline_descriptors(name), declared_concepts(name)
    )


@contextlib.contextmanager
def open_cache(cache_dir: str, retry_invalid: bool = False):
    """The step's LLM answer cache; its call statistics are logged however the step ends."""
    from clipconcepts.llm.cache import LLMCache

    cache = LLMCache(cache_dir, retry_invalid=retry_invalid)
    try:
        yield cache
    finally:
        log.info("LLM calls: %s", cache.stats.summary())


def read_cache(cache_dir: str | None, retry_invalid: bool = False):
    """The answer cache as a dry run sees it: nothing is created (an absent folder is an
    empty cache)."""
    from clipconcepts.llm.cache import LLMCache

    exists = bool(cache_dir) and Path(cache_dir).is_dir()
    return LLMCache(cache_dir if exists else None, retry_invalid=retry_invalid)
