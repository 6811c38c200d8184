"""The patterns `reasoning_check` reads a Player's reasoning with, and a text made ready for them.

Each pattern is written once, case-blind over the text as written; `_LOWERED` holds the same patterns compiled
for text lowered (re scans those several times faster). The gates are cheap looks that rule a scan out.
"""

from __future__ import annotations

import re
from collections import namedtuple

_SMALL = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORD_VALUES = {w: i for i, w in enumerate(_SMALL)} | _TENS
_DIGIT_WORD = "|".join(_SMALL[:10])
_CARDINAL = (rf"(?:(?:{'|'.join(_TENS)})(?:[\s-](?:{'|'.join(_SMALL[1:10])}))?|{'|'.join(reversed(_SMALL))})")
_WORDS = re.compile(
    rf"\b(?:(?P<whole>{_CARDINAL})(?P<half>\s+and\s+a\s+half)?(?P<point>\s+point(?:\s+(?:{_DIGIT_WORD}))+)?"
    r"|(?P<onlyhalf>a\s+half|half\s+a))\b",
    re.IGNORECASE,
)
_MULTIPLE = re.compile(r"\b(?P<times>twice|double|triple)\s+(?:the\s+|its\s+|my\s+)?risk\b", re.IGNORECASE)
_UNIT = re.compile(r"\s?(?:(?P<pct>%|percent\b|per\s?cent\b|pct\b)|(?P<r>R\b(?!/)|x\b))", re.IGNORECASE)
# A figure ("$1,250.50", not the "5" of "sma5" or of "1.5.2") and its unit when one follows. It starts with its first
# character, [$\d], and looks back from there: re then skips every other character without trying a match there.
_FIGURE = re.compile(
    r"(?P<figure>[$\d](?<![\w.,].)(?:(?<=\$)(?:\d{1,3}(?:,\d{3})+|\d+)|(?<!\$)(?:\d{0,2}(?:,\d{3})+|\d*))"
    rf"(?:\.\d+)?)(?!\d)(?:{_UNIT.pattern})?", re.IGNORECASE)

_BOUNDARY = re.compile(r"[.!?;,\n](?!\d)|\s(?:and|but|while|with|then)\s")
_LIMIT_WORDS = (r"min|minimum|max|maximum|limit|cap|threshold|allowed|required|at\s+least|at\s+most|above|below|"
                r"over|under|within|inside|exceeds?|more\s+than|less\s+than|vs\.?|versus|floor|ceiling|budget|preset|rule")
_KEYWORDS = re.compile(  # every alternative starts a word: one \b up front keeps the scan fast
    # A constraint name (min_risk_reward) is the limit, not the trade. Tried at every word: letters and digits are
    # taken for good (++, *+), as giving one back would put a letter or digit where it needs "_".
    r"\b(?:(?P<name>[a-z]++[0-9]*+(?:_[a-z0-9]+)+)"
    r"|(?P<ratio>r\s*[/:]\s*r|rr|risk[\s/_-]*(?:to[\s-]*)?reward|reward[\s/_-]*(?:to[\s-]*)?risk|ratio|payoff)"
    r"|(?P<stop>stop(?:[\s-]*loss)?|stopped)"
    r"|(?P<target>target|take[\s-]*profit|tp|profit\s+target|objective)"
    r"|(?P<entry>entry(?:\s+price)?|enter(?:ing)?\s+at|in\s+at|fill(?:ed)?\s+at|(?:in|on)\s+[a-z][\w.=-]{0,9}\s+at)"
    r"|(?P<risk>risk(?:ing|s)?|downside)"
    r"|(?P<reward>rewards?|upside)"
    r"|(?P<size>size[ds]?|sizing|allocat\w*)"
    r"|(?P<side>long|short(?:ing)?|buy(?:ing)?)"
    r"|(?P<block>sma\d*|ema\d*|atr|vwap|volume|price|equity|drawdown|leverage|round|days?|was|were|previously|before|"
    rf"{_LIMIT_WORDS}))\b",
    re.IGNORECASE,
)
_OF_EQUITY = re.compile(r"\s*(?:of\s+(?:the\s+)?(?:equity|account|capital|portfolio|book|nav)|position|long|short)\b",
                        re.IGNORECASE)
_LIMIT_AFTER = re.compile(r"\s*(?:atr\b|of\s+atr\b|leverage\b|(?:[a-z]+\s+){0,2}?(?:min|minimum|max|maximum|limit|"
                          r"cap|threshold|floor|ceiling|budget|allowance|allowed|required)\b)", re.IGNORECASE)
_RATIO_AFTER = re.compile(r"\s*(?:r\s*[/:]\s*r|rr|risk[\s/_-]*(?:to[\s-]*)?reward|reward[\s/_-]*(?:to[\s-]*)?risk|"
                          r"ratio|times\s+(?:the\s+)?risk|(?:the\s+)?risk)\b", re.IGNORECASE)
_TIMES_RISK = re.compile(r"\s*(?:x|times)\s+(?:the\s+|its\s+|my\s+)?risk\b", re.IGNORECASE)
# What may stand between two numbers (whitespace around it): a value replaced by the next, or a pair (1:2.5).
_THEN_WORDS = ("to", "->", "→", "=>")
_PAIR_WORDS = (":", "to", "-to-")

_TICKER = re.compile(r"\s+(?:(?:in|on|the)\s+)?(?P<sym>[A-Z][A-Z0-9]{0,5}(?:[.=-][A-Z0-9]{1,4})?)\b(?![a-z])")
_NOT_TICKERS = {"I", "A", "R", "RR", "ATR", "SMA", "EMA", "ET", "USD", "VWAP", "ETF", "NY", "AM", "PM", "OK", "TP", "SL",
                "APPROVE", "REJECT", "ABORT", "THE", "AND", "AT", "ON", "IN", "WITH", "STOP", "TARGET"}
# long|short|shorting|buy|buying|sell short|selling short, starting a word: the first letter is matched first and
# the word start checked from there, so re skips every character but l, s and b without trying a match.
_SIDE = re.compile(r"(?P<side>[lsb](?<!\w.)(?:(?<=l)ong|(?<=s)(?:hort|horting|ell\s+short|elling\s+short)"
                   r"|(?<=b)(?:uy|uying)))\b(?!-)", re.IGNORECASE)
_SIDE_BEFORE = re.compile(r"(?:(?P<neg>\b(?:not|no|never|don't|won't|avoid|instead\s+of|rather\s+than)\s+(?:\w+\s+)?)"
                          r"|(?P<verb>\b(?:go|going|enter|entering|open|opening|get|getting|initiate)\s+(?:a\s+)?))$",
                          re.IGNORECASE)
_EXIT = re.compile(r"(?<!the )\b(?:exit|exiting|close|closing|flatten)\b(?!\s+(?:at|above|below|near|of|to)\b)",
                   re.IGNORECASE)
_HOLD = re.compile(r"(?<![\w'])(?<!no )(?<!not )(?<!don't )\b(?:hold|stand\s+aside|stay\s+flat)\b"
                   r"(?=\s*(?:instead|for\s+now|here|this\s+one)?\s*(?:[.!;,:\n]|$)|\s+[A-Z]{1,6}\b)", re.IGNORECASE)
_AT = re.compile(r"\bat\b", re.IGNORECASE)
_RATIO_WORD = re.compile(r"\s*(?:times|r\s*/|rr|ratio|risk[\s/_-]*(?:to[\s-]*)?reward|reward)", re.IGNORECASE)
_NAMED_AFTER = re.compile(r"\s*(?:(?P<stop>stop)|(?P<target>target)|(?P<risk>risk)|(?P<reward>reward))\b",
                          re.IGNORECASE)
_SIZED_BEFORE = re.compile(r"\d\s?(?:%|percent|pct)\s*$")
_SIZED_AFTER = re.compile(r"\s+(?:at\s+)?\$?\d")
_EXIT_AFTER = re.compile(r"\s*(?:[.!;:\n]|$|(?:the\s+)?(?:long|short|position))", re.IGNORECASE)

# The patterns a text is read with: case-blind over the text as written (`_ANY_TEXT`), or case-sensitive over
# the text lowered (`_LOWERED`, when lowering is exact: see _read); the others always run over the text as written.
_Rx = namedtuple("_Rx", "figure words multiple unit keywords of_equity limit_after ratio_after ratio_word named_after "
                        "times_risk at side side_before exit exit_after hold")
_ANY_TEXT = _Rx(_FIGURE, _WORDS, _MULTIPLE, _UNIT, _KEYWORDS, _OF_EQUITY, _LIMIT_AFTER, _RATIO_AFTER, _RATIO_WORD,
                _NAMED_AFTER, _TIMES_RISK, _AT, _SIDE, _SIDE_BEFORE, _EXIT, _EXIT_AFTER, _HOLD)


def _lowered(rx: re.Pattern, word_start: bool = False) -> re.Pattern:
    """The same pattern for text already lowered, matching case-sensitively: on such text the two find exactly
    the same spans, and re runs a case-sensitive scan several times faster. `word_start`: every alternative starts
    with a letter, so the leading \\b is "no word character before, a letter next", which re rejects sooner."""
    source = rx.pattern.replace("(?P<", "\0").lower().replace("\0", "(?P<")
    if word_start:
        source = r"(?<!\w)(?=[a-z])" + source.removeprefix("\\b")
    return re.compile(source, rx.flags & ~re.IGNORECASE)


_LOWERED = _Rx(*(_lowered(rx, word_start=name in ("words", "multiple", "keywords"))
                 for name, rx in zip(_Rx._fields, _ANY_TEXT)))


# Pieces one of which starts a word of every match of a pattern: a text (lowered) with none of them starting a word is
# not scanned. str.find finds a piece far faster than re scans the text (a number word: the shortest pieces that
# start them all).
_GATES = {"words": ("zero", "one", "tw", "thre", "thir", "four", "fort", "five", "fif", "six", "sev", "eigh", "nin",
                    "ten", "elev", "half"), "multiple": ("twice", "double", "triple"), "side": ("long", "short", "buy"),
          "exit": ("exit", "clos", "flatten"), "hold": ("hold", "stand", "stay")}


def _may_match(t, name: str) -> bool:
    """False when pattern `name` cannot match the text: a cheap look before a costly scan (lowered text only).
    Every match holds a piece at the start of a word ("half" starts the second word of "a half"), so a piece only
    inside words ("often", "none", "between", "threshold") does not pass (but for the side scan)."""
    if t.rx is _ANY_TEXT:
        return True
    low = t.low
    for piece in _GATES[name]:  # a plain loop: any() over a generator costs more than the look itself
        # `in` first: most pieces are in no text. The side scan (a charset first) costs less than the word check.
        if piece in low and (name == "side" or _starts_a_word(low, piece)):
            return True
    return False


def _starts_a_word(low: str, piece: str) -> bool:
    at = low.find(piece)
    while at > 0 and (low[at - 1].isalnum() or low[at - 1] == "_"):  # re's \w before it: inside a word
        at = low.find(piece, at + 1)
    return at >= 0


_Text = namedtuple("_Text", "text low rx")  # as written; lowered when that is exact; the patterns for it

# The only characters for which reading the text lowered differs from reading it case-blind: "İ" lowers to two
# characters (the positions would shift), and re matches "ı" and "ſ" case-blind to i and s, which they do not lower
# to. For every other character (the Kelvin sign lowers to k; é, —, → stay what they are), lower() keeps \w, \s, \d
# and [a-z] as they were and turns exactly the letters re folds to an ASCII one into it (checked over all of Unicode).
_NOT_LOWERED = ("\u0130", "\u0131", "\u017f")


def _read(text: str) -> _Text:
    if text.isascii() or not any(c in text for c in _NOT_LOWERED):
        return _Text(text, text.lower(), _LOWERED)
    return _Text(text, text, _ANY_TEXT)
