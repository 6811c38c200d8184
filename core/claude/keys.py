"""The API key: its shape checked before use, the gateway it goes to, and redaction (no SDK here).

The key lives only inside the SDK client. Every text that leaves the Claude agents (an error, a
log line, the model's own words that are stored, shown or exported) goes through `redact`, which
finds the key in the forms an upstream error or a model echoing it has been seen to use: as it
is, in another case, with spaces or line breaks between its characters, base64-encoded, or any
run of KEY_FRAGMENT or more of its characters.
"""

from __future__ import annotations

import base64
import os
import re

# What an Anthropic key looks like: checked before a key is used (anything else could break the
# HTTP header it travels in, and an error about that header would quote it), and searched for
# when a text is redacted (any case, so an upper-cased key is found too).
_KEY_SHAPE = re.compile(r"sk-ant-[a-z0-9_\-]{8,}", re.IGNORECASE)
KEY_MIN_LENGTH = 40  # Anthropic keys have about 108 characters; a much shorter one was cut off
_KEY_CHARS = re.compile(r"[A-Za-z0-9_\-]")


def key_problem(key: str, base_url: str | None = None) -> str | None:
    """What is wrong with a typed key, in plain words that never quote it; None when its shape is fine.

    With a base URL (a gateway that speaks Anthropic's API, set in Settings or ANTHROPIC_BASE_URL)
    any key goes that can travel in an HTTP header: no spaces, only printable ASCII.
    """
    if not key:
        return "Enter a key first."
    where = next((i for i, c in enumerate(key) if c.isspace()), None)
    if where is not None:
        return (f"The key contains a space or a line break (character {where + 1} of {len(key)}): "
                "copy it again as one piece.")
    where = next((i for i, c in enumerate(key) if not (c.isascii() and c.isprintable())), None)
    if where is not None:
        return (f"The key contains a character that is not plain text (character {where + 1} of {len(key)}, "
                "for example a typographic quote or an invisible character): copy it again from the console.")
    if base_url:
        return None
    if "=" in key or key[0] in "'\"" or key[-1] in "'\"":
        return "Paste only the key itself, without a variable name, an = sign or quotes around it."
    if not key.startswith("sk-ant-"):
        return "An Anthropic key starts with sk-ant-; this one does not, so its start is missing or mistyped."
    where = next((i for i, c in enumerate(key) if not _KEY_CHARS.fullmatch(c)), None)
    if where is not None:
        return (f"The key contains a character an Anthropic key never has (character {where + 1} of {len(key)}; "
                "keys have only letters, digits, - and _).")
    if len(key) < KEY_MIN_LENGTH:
        return (f"The key has only {len(key)} characters, an Anthropic key about 108: it looks cut off, "
                "copy it again whole.")
    return None


def gateway(base_url: str | None) -> str | None:
    """The base URL requests go to: the one given, else ANTHROPIC_BASE_URL, else None (Anthropic's API).

    The one definition of that rule: the pages pass the gateway typed on Settings (or None) through it.
    """
    return base_url or os.environ.get("ANTHROPIC_BASE_URL") or None


# --- redaction -----------------------------------------------------------------------------

KEY_FRAGMENT = 8
"""The shortest run of the key's characters that redact() removes: an error that quotes part of the key
(its last 60 characters, say) gives none of it away."""

_B64_FRAGMENT = 12  # base64 turns 8 characters into about 11: the same share of the key as KEY_FRAGMENT
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # keeps every index


def _encoded(key: str) -> list[str]:
    """The key's base64 forms: for each of the three alignments a key can have inside an encoded text
    (and in the URL-safe alphabet), the characters that depend on the key alone."""
    forms = []
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * shift + key.encode()).decode().rstrip("=")
            # the first 4 characters mix in the padding bytes, the last 3 the bytes after the key
            forms.append(text[4:-3] if shift else text[:-3])
    return forms


def _hide(text: str, needle: str, fragment: int, *, fold_case: bool) -> str:
    """The text with every run of `fragment` or more of needle's characters replaced by [key], read
    across whitespace (a key split by spaces or line breaks is still found) and, with fold_case, in any case."""
    if len(needle) < fragment:
        return text
    kept = [i for i, c in enumerate(text) if not c.isspace()]
    view = "".join(text[i] for i in kept)
    if fold_case:
        view, needle = view.translate(_ASCII_LOWER), needle.translate(_ASCII_LOWER)
    pieces = {needle[i:i + fragment] for i in range(len(needle) - fragment + 1)}
    spans, i = [], 0
    while i <= len(view) - fragment:
        if view[i:i + fragment] in pieces:
            end = i + fragment
            while end < len(view) and view[i:end + 1] in needle:  # the longest run of the key from here
                end += 1
            spans.append((kept[i], kept[end - 1] + 1))
            i = end
        else:
            i += 1
    for start, end in reversed(spans):
        text = text[:start] + "[key]" + text[end:]
    return text


def _anchors(needle: str, fragment: int, step: int) -> list[str]:
    """Pieces of the needle that any run of `fragment` of its characters contains one of: the
    (fragment - step + 1)-character pieces that start at multiples of `step`."""
    size = fragment - step + 1
    return [needle[i:i + size] for i in range(0, len(needle) - size + 1, step)]


class Redactor:
    """redact() for one key, its forms worked out once: a stream redacts its growing text at every delta,
    so a text that holds none of the key costs two regular-expression scans, not a walk per form."""

    def __init__(self, key: str | None) -> None:
        self.key = key or ""
        self.forms = _encoded(self.key) if len(self.key) >= KEY_FRAGMENT else []
        folded = _anchors(self.key.translate(_ASCII_LOWER), KEY_FRAGMENT, 4) if self.forms else []
        encoded = [a for form in self.forms for a in _anchors(form, _B64_FRAGMENT, 6)]
        self._folded = re.compile("|".join(map(re.escape, folded))) if folded else None
        self._encoded = re.compile("|".join(map(re.escape, encoded))) if encoded else None

    def __call__(self, text: str) -> str:
        if not self.key:
            return _KEY_SHAPE.sub("[key]", text)
        if not self.forms:
            return _KEY_SHAPE.sub("[key]", text.replace(self.key, "[key]"))
        squeezed = "".join(text.split())
        if self._folded is not None and self._folded.search(squeezed.translate(_ASCII_LOWER)):
            text = _hide(text, self.key, KEY_FRAGMENT, fold_case=True)
        if self._encoded is not None and self._encoded.search(squeezed):
            for form in self.forms:
                text = _hide(text, form, _B64_FRAGMENT, fold_case=False)
        return _KEY_SHAPE.sub("[key]", text)


def redact(text: str, key: str | None) -> str:
    """The text with the key hidden as [key]: the key in any case, split by whitespace, base64-encoded,
    any run of KEY_FRAGMENT or more of its characters, and anything shaped like an Anthropic key."""
    return Redactor(key)(text)


def redact_all(value, redactor: Redactor):
    """Every string inside a JSON-like value (a tool input: dicts, lists, strings) redacted."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {name: redact_all(item, redactor) for name, item in value.items()}
    if isinstance(value, list):
        return [redact_all(item, redactor) for item in value]
    return value
