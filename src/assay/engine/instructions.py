"""A project's instructions, Markdown to HTML: the one place they are rendered.

Annotators read them above every task (``instructions_html`` in the project
view) and the new-project wizard previews them
(``POST /api/instructions/preview``). The text is an admin's, but the page
showing it is everyone's, so the renderer is markdown-it-py's CommonMark with
raw HTML off (``<script>`` or ``<img onerror=…>`` come out as text) and its
link check on (``javascript:``, ``vbscript:``, ``file:`` and ``data:`` links
other than images are not made into links); links open without a referrer.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt

#: the most characters rendered (the instructions setting's own bound)
MAX_CHARS = 100_000


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table")
    md.enable("strikethrough")

    def link_open(self, tokens, idx, options, env):
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _parser()


@lru_cache(maxsize=256)
def to_html(text: str) -> str:
    """``text`` (Markdown) as safe HTML; "" for empty text."""
    text = (text or "")[:MAX_CHARS]
    if not text.strip():
        return ""
    return _MD.render(text)
