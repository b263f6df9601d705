"""Prompts for labelling and judging heads, as data, and the requests built from them.

The CCS paper's prompts are not public: these are our own. Every template below is part of the
cache key (through the messages it produces), so editing a prompt re-asks every affected call;
`prompt_fingerprint(task)` gives a hash of a task's prompt text for Snakemake params.

A request carries, beside the chat messages, the structured `payload` they were built from (the
texts, the label), so the offline backend answers the very same request without parsing prose.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]

LABEL_TASK = "label"
JUDGE_TEXT_TASK = "judge_text"
JUDGE_HEAD_TASK = "judge_head"
DESCRIBE_TASK = "describe_class"

# ---------------------------------------------------------------------------------------------
# Labelling: one call per head, 5 hand-written in-context examples as prior chat turns.

LABEL_SYSTEM = """\
You name the concept shared by a set of short image descriptions. The descriptions are the texts \
that best explain what one attention head of a vision model responds to.
Answer with the dominant concept as a short noun phrase of one to three words in title case, \
such as "Animals", "Colors" or "Body parts". Prefer a broad property or category (people, animals, \
nature, locations, colors, textures, materials, objects, letters and text, body parts, professions, \
food, vehicles, art styles, lighting, numbers, emotions, ...) over one specific object. If most \
descriptions share a concept, name it even when one or two of them do not fit.
Reply with JSON only, in the form {"label": "<concept>"}."""

LABEL_USER = """\
Descriptions:
{numbered_texts}
Which concept do most of these descriptions share?"""

# (texts, label): two examples hold an outlier, to show that the label follows the majority.
LABEL_EXAMPLES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        (
            "A portrait of an elderly woman",
            "Image with two children playing",
            "A photo of a young man",
            "A group of smiling teenagers",
            "Image of a bride and groom",
        ),
        "People",
    ),
    (
        (
            "A photo with the letter M",
            "An image of the letter Q",
            "Text written in bold capitals",
            "A sign with handwritten words",
            "A sunny beach at noon",
        ),
        "Letters",
    ),
    (
        (
            "A photo taken in Paris",
            "Image of the Sahara desert",
            "A street scene in Tokyo",
            "An image of Iceland",
            "A photo taken in rural Peru",
        ),
        "Locations",
    ),
    (
        (
            "A bright red door",
            "Image with shades of blue",
            "A vivid yellow flower",
            "A purple and pink sky",
            "Monochrome green tones",
        ),
        "Colors",
    ),
    (
        (
            "Image with a zebra",
            "A photo of a sleeping cat",
            "A close-up of a parrot",
            "Image showing a herd of elephants",
            "A rusty bicycle",
        ),
        "Animals",
    ),
)

LABEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"label": {"type": "string"}},
    "required": ["label"],
    "additionalProperties": False,
}

# ---------------------------------------------------------------------------------------------
# Judging: does a text fit the head's label? One text per call, or all of a head's texts at once.

_JUDGE_RULES = """\
A description fits the label when what it depicts or describes is an instance of the concept or is \
clearly about it: "A photo of a woman" fits "People", "Image with a donkey" fits "Animals", \
"A meadow" does not fit "Colors". Judge each description on its own words, literally; do not \
stretch to find a link."""

JUDGE_TEXT_SYSTEM = f"""\
You check whether an image description fits a concept label.
{_JUDGE_RULES}
Reply with JSON only, in the form {{"aligned": true}} or {{"aligned": false}}."""

JUDGE_TEXT_USER = """\
Concept label: "{label}"
Description: "{text}"
Does the description fit the concept label?"""

JUDGE_HEAD_SYSTEM = f"""\
You check whether each of several image descriptions fits a concept label.
{_JUDGE_RULES}
Reply with JSON only, in the form {{"aligned": [true, false, ...]}}: one boolean per description, \
in the order given."""

JUDGE_HEAD_USER = """\
Concept label: "{label}"
Descriptions:
{numbered_texts}
For each description, does it fit the concept label?"""

JUDGE_TEXT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"aligned": {"type": "boolean"}},
    "required": ["aligned"],
    "additionalProperties": False,
}
# The list length is checked in `check_answer` (minItems/maxItems are not accepted everywhere).
JUDGE_HEAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"aligned": {"type": "array", "items": {"type": "boolean"}}},
    "required": ["aligned"],
    "additionalProperties": False,
}

# ---------------------------------------------------------------------------------------------
# Describing a class (mutual knowledge's descriptor bank): the user turn is the prompt P1 of
# Sammani & Deligiannis (2024, appendix A.4); the system text and the in-context example are ours.
# The request is built in `clipconcepts.mutual.descriptors`.

DESCRIBE_SYSTEM = """\
You list the visual features that tell a category of things apart in a photograph. Each feature \
is a short descriptor of a few words (two to six): a part, shape, colour, texture, material, size, \
pose or typical surrounding that can be seen. Never name the category itself (nor its plural) in a \
descriptor, so that every descriptor could also describe other things. No numbering, no \
duplicates. Reply with JSON only, in the form {"descriptors": ["...", ...]}."""

DESCRIBE_USER = "What are useful visual features for distinguishing a {category} in a photo?"

DESCRIBE_EXAMPLE: tuple[str, tuple[str, ...]] = (
    "fire truck",
    (
        "bright red paintwork",
        "a long extending ladder on the roof",
        "flashing lights on the cab",
        "coiled hoses along the sides",
        "polished chrome bumpers",
        "large heavy-duty wheels",
        "roll-up compartment doors",
        "reflective stripes along the body",
        "a wide cab with several seats",
    ),
)

DESCRIBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"descriptors": {"type": "array", "items": {"type": "string"}}},
    "required": ["descriptors"],
    "additionalProperties": False,
}

REASK_USER = """\
Your reply could not be used: {error}. Reply again with JSON only, following the requested form."""

MAX_LABEL_CHARS = 80


@dataclass(frozen=True)
class LLMRequest:
    """One question to an LLM: chat messages, the JSON schema of the answer, and the payload the
    messages were built from (read by the offline backend; implied by the messages, so it is not
    part of the cache key)."""

    task: str
    messages: tuple[Message, ...]
    schema_name: str
    schema: Mapping[str, Any]
    payload: Mapping[str, Any] = field(default_factory=dict)


def _numbered(texts: Sequence[str]) -> str:
    return "\n".join(f"{i}. {_one_line(t)}" for i, t in enumerate(texts, start=1))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("a head needs at least one text to be labelled or judged")
    return texts


def label_request(texts: Sequence[str]) -> LLMRequest:
    """The labelling request for one head's TEXTSPAN texts (in rank order)."""
    texts = _check_texts(texts)
    messages: list[Message] = [{"role": "system", "content": LABEL_SYSTEM}]
    for example_texts, example_label in LABEL_EXAMPLES:
        messages.append(
            {"role": "user", "content": LABEL_USER.format(numbered_texts=_numbered(example_texts))}
        )
        messages.append({"role": "assistant", "content": json.dumps({"label": example_label})})
    messages.append({"role": "user", "content": LABEL_USER.format(numbered_texts=_numbered(texts))})
    return LLMRequest(LABEL_TASK, tuple(messages), "concept_label", LABEL_SCHEMA, {"texts": texts})


def judge_text_request(label: str, text: str) -> LLMRequest:
    """The `per_text` judging request: does one text fit the label?"""
    user = JUDGE_TEXT_USER.format(label=_one_line(label), text=_one_line(text))
    messages = ({"role": "system", "content": JUDGE_TEXT_SYSTEM}, {"role": "user", "content": user})
    payload = {"label": str(label), "text": str(text)}
    return LLMRequest(JUDGE_TEXT_TASK, messages, "text_verdict", JUDGE_TEXT_SCHEMA, payload)


def judge_head_request(label: str, texts: Sequence[str]) -> LLMRequest:
    """The `per_head` judging request: which of a head's texts fit the label?"""
    texts = _check_texts(texts)
    user = JUDGE_HEAD_USER.format(label=_one_line(label), numbered_texts=_numbered(texts))
    messages = ({"role": "system", "content": JUDGE_HEAD_SYSTEM}, {"role": "user", "content": user})
    payload = {"label": str(label), "texts": texts}
    return LLMRequest(JUDGE_HEAD_TASK, messages, "head_verdicts", JUDGE_HEAD_SCHEMA, payload)


def reask_messages(request: LLMRequest, bad_reply: str, error: str) -> list[Message]:
    """The conversation for the one re-ask after an unusable answer: the bad reply and why."""
    return [
        *request.messages,
        {"role": "assistant", "content": bad_reply},
        {"role": "user", "content": REASK_USER.format(error=error)},
    ]


def check_answer(request: LLMRequest, data: Any) -> str | None:
    """Checks beyond the JSON schema; returns why `data` is unusable, or None when it is fine."""
    if request.task == LABEL_TASK:
        label = data["label"].strip()
        if not label:
            return "the label is empty"
        if len(label) > MAX_LABEL_CHARS:
            return f"the label is longer than {MAX_LABEL_CHARS} characters"
    elif request.task == JUDGE_HEAD_TASK:
        n = len(request.payload["texts"])
        if len(data["aligned"]) != n:
            return f"'aligned' holds {len(data['aligned'])} values for {n} descriptions"
    elif request.task == DESCRIBE_TASK and not any(d.strip() for d in data["descriptors"]):
        return "the list of descriptors is empty"
    return None


_TASK_TEXT: dict[str, dict[str, Any]] = {
    LABEL_TASK: {
        "system": LABEL_SYSTEM,
        "user": LABEL_USER,
        "examples": LABEL_EXAMPLES,
        "schema": LABEL_SCHEMA,
    },
    JUDGE_TEXT_TASK: {
        "system": JUDGE_TEXT_SYSTEM,
        "user": JUDGE_TEXT_USER,
        "schema": JUDGE_TEXT_SCHEMA,
    },
    JUDGE_HEAD_TASK: {
        "system": JUDGE_HEAD_SYSTEM,
        "user": JUDGE_HEAD_USER,
        "schema": JUDGE_HEAD_SCHEMA,
    },
    DESCRIBE_TASK: {
        "system": DESCRIBE_SYSTEM,
        "user": DESCRIBE_USER,
        "examples": DESCRIBE_EXAMPLE,
        "schema": DESCRIBE_SCHEMA,
    },
}


def prompt_fingerprint(task: str) -> str:
    """sha256 of everything that shapes a task's prompts (templates, examples, schema, re-ask)."""
    if task not in _TASK_TEXT:
        raise ValueError(f"unknown LLM task {task!r}; known: {sorted(_TASK_TEXT)}")
    blob = json.dumps({**_TASK_TEXT[task], "reask": REASK_USER}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def prompt_fingerprints() -> dict[str, str]:
    """`prompt_fingerprint` of every task, e.g. for a rule's `params:`."""
    return {task: prompt_fingerprint(task) for task in _TASK_TEXT}


def prompt_texts(task: str) -> dict[str, Any]:
    """A task's prompts as plain JSON data, for the record of what a step asked: `system`,
    `user` (the template), `examples` (in-context examples, absent when none), `schema` (the
    answer's JSON schema), `reask` (the re-ask template) and `fingerprint`."""
    fingerprint = prompt_fingerprint(task)  # checks the task
    texts = json.loads(json.dumps(_TASK_TEXT[task]))  # tuples -> lists, a deep copy
    return {**texts, "reask": REASK_USER, "fingerprint": fingerprint}
