"""Markdown to HTML that is safe to put in a page: markdown-it renders CommonMark (raw HTML
off, so ``<script>`` stays text), then nh3 (the Ammonia sanitiser) keeps only harmless tags
and attributes and only http(s)/mailto links, whatever a crafted link or image tried."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_RENDERER = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "img", "table", "thead", "tbody", "tr", "th", "td",
}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
_SCHEMES = {"http", "https", "mailto"}


def render(text: str) -> str:
    """``text`` (Markdown) as sanitised HTML; links open nothing but web pages and mail."""
    if not text:
        return ""
    html = _RENDERER.render(text)
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES,
                     link_rel="nofollow noopener noreferrer", strip_comments=True)
