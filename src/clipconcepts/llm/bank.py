"""Text-bank generation: ask the configured LLM for short, diverse image descriptions.

Requests go in batches, each seeded with a different theme so batches do not repeat each other;
answers go through the same cache as labelling and judging (a rerun makes 0 calls). The result
is de-duplicated (case and spacing) and truncated to `n`.
"""

from __future__ import annotations

import logging
from typing import Any

from clipconcepts.llm.backends import Backend, ask_many, check_invalid_share
from clipconcepts.llm.cache import LLMCache
from clipconcepts.llm.prompts import LLMRequest

log = logging.getLogger(__name__)

BANK_TASK = "generate_bank"

BANK_SYSTEM = """\
You write short descriptions of photographs, as a caption writer would: 2 to 8 words each, \
concrete and visual (what is shown, where, its colours, textures, style, lighting, mood), \
no numbering, no duplicates. Reply with JSON only: {"descriptions": ["...", ...]}."""

BANK_USER = """\
Write {k} different short image descriptions. Theme of this batch: {theme}. \
Vary the wording ("A photo of ...", "Image with ...", "... in the background", plain noun phrases)."""

BANK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"descriptions": {"type": "array", "items": {"type": "string"}}},
    "required": ["descriptions"],
    "additionalProperties": False,
}

# Broad themes that cover the concept families the CCS paper reports.
THEMES = (
    "people and portraits",
    "animals",
    "nature and landscapes",
    "countries, cities and landmarks",
    "colors",
    "textures",
    "materials",
    "everyday objects",
    "letters, words and text",
    "body parts",
    "professions",
    "food and drinks",
    "vehicles",
    "art styles",
    "lighting",
    "numbers and counting",
    "emotions and moods",
    "weather and seasons",
    "sports",
    "music",
    "architecture and interiors",
    "patterns and shapes",
    "photography styles",
    "plants and flowers",
)


def bank_prompts() -> dict[str, Any]:
    """The generation prompts, for the record of what the step asked (`prompts.prompt_texts`'
    form: system, user template, answer schema)."""
    return {BANK_TASK: {"system": BANK_SYSTEM, "user": BANK_USER, "schema": BANK_SCHEMA}}


def bank_request(theme: str, k: int, batch: int) -> LLMRequest:
    user = BANK_USER.format(k=k, theme=theme)
    # The batch number makes repeated themes distinct requests (and distinct cache entries).
    messages = (
        {"role": "system", "content": BANK_SYSTEM},
        {"role": "user", "content": f"{user} (batch {batch})"},
    )
    return LLMRequest(BANK_TASK, messages, "descriptions", BANK_SCHEMA, {"theme": theme, "k": k})


def bank_requests(n: int, batch_size: int = 50) -> list[LLMRequest]:
    """The requests `generate_bank` sends for `n` descriptions (a little slack for duplicates
    and invalid answers)."""
    n_batches = -(-n // batch_size) + 2
    return [bank_request(THEMES[i % len(THEMES)], batch_size, i) for i in range(n_batches)]


def generate_bank(
    backend: Backend,
    cache: LLMCache,
    n: int,
    batch_size: int = 50,
    max_concurrency: int | None = None,
    max_invalid_fraction: float | None = None,
) -> list[str]:
    """`n` de-duplicated descriptions (fewer, with a warning, if the LLM repeats itself). More
    than `max_invalid_fraction` of the batches invalid raises TooManyInvalidError."""
    from clipconcepts.textbank import dedupe

    requests = bank_requests(n, batch_size)
    answers = ask_many(backend, requests, cache, max_concurrency, desc="text bank")
    texts = [t for a in answers if a.valid for t in a.data["descriptions"]]
    invalid = sum(not a.valid for a in answers)
    if invalid:
        log.warning("%d of %d text-bank answers were invalid and skipped", invalid, len(answers))
    check_invalid_share(backend, invalid, len(answers), "text-bank batches", max_invalid_fraction)
    unique = dedupe(t.strip() for t in texts if t.strip())
    if len(unique) < n:
        log.warning("the LLM gave %d unique descriptions, fewer than the %d asked", len(unique), n)
    return unique[:n]
