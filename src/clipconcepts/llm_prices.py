"""What LLM tokens cost: the price table of the config (`llm.prices`) and the cost of token counts.

Prices are data, never code: `llm.prices` maps an `llm.backends` name to the price of one
million prompt tokens and of one million completion tokens (`prompt_per_1m`,
`completion_per_1m`), in the currency `llm.currency` names. A backend without a price has an
unknown cost (None), never 0, unless it used no tokens (every answer from the cache) or is the
offline backend (no model is asked).

Standard library only: the LLM steps (the dry-run estimate) and the report both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PRICE_KEYS = ("prompt_per_1m", "completion_per_1m")


@dataclass(frozen=True)
class Price:
    """The price of one million prompt tokens and of one million completion tokens."""

    prompt_per_1m: float
    completion_per_1m: float


def parse_prices(prices: Mapping[str, Any] | None) -> dict[str, Price]:
    """`llm.prices` as {backend name: Price}; a malformed entry raises ValueError naming it."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise ValueError(f"llm.prices must map backend names to prices, got {prices!r}")
    out = {}
    for name, entry in prices.items():
        where = f"llm.prices.{name}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a mapping with keys {list(PRICE_KEYS)}")
        keys = set(entry)
        if keys != set(PRICE_KEYS):
            raise ValueError(
                f"{where} needs exactly the keys {list(PRICE_KEYS)} (price per 1M tokens), "
                f"got {sorted(keys)}"
            )
        for key in PRICE_KEYS:
            value = entry[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}.{key} must be a number >= 0, got {value!r}")
        out[str(name)] = Price(float(entry["prompt_per_1m"]), float(entry["completion_per_1m"]))
    return out


def cost(
    prompt_tokens: int, completion_tokens: int, price: Price | None, kind: str | None = None
) -> float | None:
    """What the tokens cost at `price`; 0 without tokens or for the offline backend; None
    (unknown) when tokens were used and there is no price."""
    if kind == "offline" or (prompt_tokens == 0 and completion_tokens == 0):
        return 0.0
    if price is None:
        return None
    return (prompt_tokens * price.prompt_per_1m + completion_tokens * price.completion_per_1m) / 1e6


def format_cost(value: float | None, currency: str = "USD") -> str:
    """A cost for people: 4 significant digits below 1, cents above; 'unknown' for None."""
    if value is None:
        return "unknown"
    if value == 0:
        return f"0 {currency}"
    text = f"{value:.4g}" if value < 1 else f"{value:,.2f}"
    return f"{text} {currency}"
