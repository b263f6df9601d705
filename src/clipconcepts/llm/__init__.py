"""LLM layer: backends (openai, OpenAI-compatible, offline lexicon), a content-addressed answer
cache, and the prompts for labelling and judging heads. See docs/llm.md."""

from clipconcepts.llm.backends import (
    BACKEND_KINDS,
    DEFAULTS,
    UNCLEAR_LABEL,
    LexiconMatcher,
    LLMAnswer,
    OfflineBackend,
    ask,
    ask_many,
    check_invalid_share,
    make_backend,
    parse_answer,
)
from clipconcepts.llm.cache import BackendCounts, LLMCache, LLMStats, cache_key
from clipconcepts.llm.errors import (
    BadResponseError,
    LLMConfigError,
    LLMError,
    LLMRequestError,
    TooManyInvalidError,
    TransientLLMError,
)
from clipconcepts.llm.http import Backend, OpenAIBackend
from clipconcepts.llm.prompts import (
    LLMRequest,
    judge_head_request,
    judge_text_request,
    label_request,
    prompt_fingerprint,
    prompt_fingerprints,
)

__all__ = [
    "BACKEND_KINDS",
    "DEFAULTS",
    "UNCLEAR_LABEL",
    "BadResponseError",
    "Backend",
    "BackendCounts",
    "LLMAnswer",
    "LLMCache",
    "LLMConfigError",
    "LLMError",
    "LLMRequest",
    "LLMRequestError",
    "LLMStats",
    "LexiconMatcher",
    "OfflineBackend",
    "OpenAIBackend",
    "TooManyInvalidError",
    "TransientLLMError",
    "ask",
    "ask_many",
    "cache_key",
    "check_invalid_share",
    "judge_head_request",
    "judge_text_request",
    "label_request",
    "make_backend",
    "parse_answer",
    "prompt_fingerprint",
    "prompt_fingerprints",
]
