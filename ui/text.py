"""The one place that makes text from an agent, a user or a file safe to show, and hands HTML to Streamlit.

`escape` is for text inside the app's own HTML (speech bubbles, round cards); `literal` for text
handed to Streamlit's markdown (banners, captions, tables). Either way the text shows as typed:
no tag, link, image, emphasis or maths can come out of it.
"""

from __future__ import annotations

import html
import re

import streamlit as st

_LINE_ENDINGS = re.compile(r"\r\n?")
# What markdown (GFM) turns into a link with no brackets at all: a scheme's colon, "www." and e-mail's "@".
_AUTOLINK_HTML = {":": "&#58;", "@": "&#64;"}
WORD_JOINER = "\u2060"  # invisible, and no URL or e-mail address runs across it


def _one_line_ending(text: object) -> str:
    # Markdown reads a lone \r as a line ending: "\r\r" would be a blank line that ends an HTML block
    # and lets the rest of a bubble be read as markdown (images fetched, links made).
    return _LINE_ENDINGS.sub("\n", str(text))


def escape(text: object) -> str:
    """Text made safe and literal inside HTML: tags escaped, line breaks kept, no markdown, maths or autolinks."""
    safe = html.escape(_one_line_ending(text), quote=True)
    # Markdown would end an HTML block at a blank line and read `$` as maths; keep it one literal line.
    safe = safe.replace("$", "&#36;").replace("*", "&#42;").replace("_", "&#95;").replace("`", "&#96;")
    safe = re.sub(r"[:@]", lambda m: _AUTOLINK_HTML[m[0]], safe)
    safe = re.sub(r"(?i)\b(www)\.", r"\1&#46;", safe)
    return safe.replace("\n", "<br>")


def literal(text: object) -> str:
    """Text for st.markdown-based elements (banners, captions), shown as typed: no markup applies.

    Backslash-escaping markdown's punctuation stops links, images, emphasis, maths, raw HTML and
    HTML entities (`&lt;` stays as typed). A bare URL or e-mail address is linked by Streamlit's
    markdown after escapes are read, so a word joiner (U+2060, invisible) goes inside each one.
    """
    text = _one_line_ending(text)
    text = re.sub(r"(?i)(?<=[a-z]):(?=//)|@(?=[\w-])", lambda m: m[0] + WORD_JOINER, text)
    text = re.sub(r"(?i)(?<=www)\.", WORD_JOINER + ".", text)
    return re.sub(r"([\\`*_{}\[\]<>#|~$&])", r"\\\1", text)


def markup(html_text: str) -> None:
    """The app's one use of unsafe HTML; callers build `html_text` around escape()d text only."""
    st.markdown(html_text, unsafe_allow_html=True)
