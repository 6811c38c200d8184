"""JSON from outside (files, uploads, form fields), read defensively.

`json.loads` alone lets hostile text through or crashes on it: a duplicate key silently keeps
the last value, 100,000 nested brackets raise RecursionError, a 5,000-digit number raises a bare
ValueError, `NaN` and `Infinity` are accepted. `read_json` refuses each of these with one
InvalidInput line that names what was read and quotes at most a short excerpt of it.
"""

from __future__ import annotations

import json
import sys

from core.exchange.errors import InvalidInput

EXCERPT_CHARS = 200
"""The most characters of a caller's input an error message quotes."""


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """repr(value), cut to about `limit` characters (saying how long it was) so no message grows with its input."""
    if isinstance(value, (dict, list)) and len(value) > limit:
        return f"a {type(value).__name__} of {len(value):,} items"
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a structure nested too deep, an int too long to print
        return f"a {type(value).__name__} too large to show"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def shorten(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Text cut to about `limit` characters, saying how long it was when cut."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidInput(f"duplicate key {excerpt(key)} in one object")
        seen[key] = value
    return seen


def _no_constant(name: str) -> float:
    raise InvalidInput(f"{name} is not a number JSON allows")


def read_json(text: str | bytes, what: str = "") -> object:
    """Parse JSON text from outside; InvalidInput "what: reason" for anything hostile or broken."""
    what = f"{what}: " if what else ""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except InvalidInput as error:
        raise InvalidInput(f"{what}{error}") from None
    except RecursionError:
        raise InvalidInput(f"{what}nested too deeply to read") from None
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{what}not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{what}not UTF-8 text") from None
    except ValueError:  # int() refuses a number of more than sys.get_int_max_str_digits() digits
        raise InvalidInput(f"{what}a number with more than {sys.get_int_max_str_digits():,} digits; "
                           "no price, size or amount needs that many") from None
