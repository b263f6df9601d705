"""Links to the head browser's cards (`#head-{model}-L{layer}.H{head}`), used by every table that
names a head (standard library only).

Tables link every head they name; `keep_links` then unwraps the links whose card does not exist
(a head outside the analysed layers, a model without CCS), so no link of the page is dead, and
points the standalone assets' links at the page (`report.html#head-...`).
"""

from __future__ import annotations

import re
from collections.abc import Container
from html import escape, unescape

LINK_CLASS = "head-link"
_LINK = re.compile(r'<a class="head-link" href="#(head-[^"]*)">(.*?)</a>', re.DOTALL)


def head_name(layer: int, head: int) -> str:
    return f"L{layer}.H{head}"


def head_anchor(model: str, name: str) -> str:
    """The id of a head's card: `head-{model}-L{layer}.H{head}` (`name` as `head_name` gives)."""
    return f"head-{model}-{name}"


def head_link(
    model: str, layer: int | str, head: int | None = None, text: str | None = None
) -> str:
    """An HTML link to a head's card: `head_link(model, 11, 3)` or `head_link(model, "L11.H3")`;
    the text is the head's name unless given (already HTML)."""
    name = layer if head is None else head_name(int(layer), head)
    target = escape(head_anchor(model, str(name)), quote=True)
    return f'<a class="{LINK_CLASS}" href="#{target}">{text if text is not None else escape(str(name))}</a>'


def keep_links(html: str, anchors: Container[str], page: str = "") -> str:
    """`html` with head links to cards not in `anchors` reduced to their text; the others point
    at `page` + `#anchor` (`page` = "" within the report page itself)."""

    def sub(match: re.Match) -> str:
        anchor, text = match.group(1), match.group(2)
        if unescape(anchor) not in anchors:
            return text
        return f'<a class="{LINK_CLASS}" href="{escape(page, quote=True)}#{anchor}">{text}</a>'

    return _LINK.sub(sub, html)
