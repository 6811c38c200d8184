"""The patterns `reasoning_check` reads a Player's reasoning with, and a text made ready for them.

Each pattern is written once, case-blind over the text as written; `_LOWERED` holds the same patterns compiled
for text lowered (re scans those several times faster). One scan (_SCAN) finds the figures, the keywords, the numbers
in words and the words the other patterns start with, so those run only where such a word starts.
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
_MULTIPLE = re.compile(r"\b(?P<times>twice|double|triple)\s+(?:the\s+|its\s+|my\s+)?risk\b", re.IGNORECASE)
_UNIT = re.compile(r"\s?(?:(?P<pct>%|percent\b|per\s?cent\b|pct\b)|(?P<r>R\b(?!/)|x\b))", re.IGNORECASE)
# A figure ("$1,250.50", not the "5" of "sma5" or of "1.5.2") and its unit when one follows. It starts with its first
# character, [$\d], and looks back from there: re then skips every other character without trying a match there.
# Part of the one scan (_SCAN): an R after a blank may start the keyword "R/R" or "r : r" too, which the scan would
# step over, so that keyword is matched here as well (group "rr", after the unit).
_FIGURE = re.compile(
    r"(?P<figure>[$\d](?<![\w.,].)(?:(?<=\$)(?:\d{1,3}(?:,\d{3})+|\d+)|(?<!\$)(?:\d{0,2}(?:,\d{3})+|\d*))"
    rf"(?:\.\d+)?)(?!\d)(?:{_UNIT.pattern.removesuffix(')')}(?P<rr>(?<=\sR)\s*[/:]\s*R\b)?))?", re.IGNORECASE)

_BOUNDARY = re.compile(r"[.!?;,\n](?!\d)|\s(?:and|but|while|with|then)\s")
# The words a keyword starts with, kind by kind in the order re tries them: what the number after it is ("stop
# 262.14"); a "block" word (the market, the limits, the past) says it is no claim about the trade.
_KEYWORD_WORDS = (
    ("ratio", (r"r\s*[/:]\s*r", "rr", r"risk[\s/_-]*(?:to[\s-]*)?reward", r"reward[\s/_-]*(?:to[\s-]*)?risk", "ratio",
               "payoff")),
    ("stop", (r"stop(?:[\s-]*loss)?", "stopped")),
    ("target", ("target", r"take[\s-]*profit", "tp", r"profit\s+target", "objective")),
    ("entry", (r"entry(?:\s+price)?", r"enter(?:ing)?\s+at", r"in\s+at", r"fill(?:ed)?\s+at",
               r"in\s+[a-z][\w.=-]{0,9}\s+at", r"on\s+[a-z][\w.=-]{0,9}\s+at")),
    ("risk", (r"risk(?:ing|s)?", "downside")),
    ("reward", (r"rewards?", "upside")),
    ("size", (r"size[ds]?", "sizing", r"allocat\w*")),
    ("side", ("long", r"short(?:ing)?", r"buy(?:ing)?")),
    ("block", (r"sma\d*", r"ema\d*", "atr", "vwap", "volume", "price", "equity", "drawdown", "leverage", "round", "days?",
               "was", "were", "previously", "before", "min", "minimum", "max", "maximum", "limit", "cap", "threshold",
               "allowed", "required", r"at\s+least", r"at\s+most", "above", "below", "over", "under", "within", "inside",
               "exceeds?", r"more\s+than", r"less\s+than", r"vs\.?", "versus", "floor", "ceiling", "budget", "preset",
               "rule")),
)
# The words a multiple, a side, an exit or a hold starts with: their patterns run only where one starts (a side's
# long, short and buy are keywords too, and "sell short" starts with sell).
_GATE_WORDS = (
    ("multiple", ("twice", "double", "triple")),
    ("side", ("sell", "selling")),
    ("exit", ("exit", "exiting", "close", "closing", "flatten")),
    ("hold", ("hold", "stand", "stay")),
)


def _by_first_letter(kinds: list[tuple[str, tuple[str, ...]]]) -> str:
    """One alternation of every word of `kinds`, grouped by first letter: re then passes over a letter's words on one
    character compare instead of entering every kind's group. A group is named kind_letter. Words of two first letters
    never match at one place, so this finds what the kinds one after the other would (within a letter, in that order)."""
    letters: dict[str, dict[str, list[str]]] = {}
    for kind, words in kinds:
        for word in words:
            letters.setdefault(word[0], {}).setdefault(kind, []).append(word[1:])
    return "|".join(letter + "(?:" + "|".join(f"(?P<{kind}_{letter}>{'|'.join(rests)})"
                                              for kind, rests in by_kind.items()) + ")"
                    for letter, by_kind in letters.items())


_NUMBER_LETTERS = "".join(sorted({w[0] for w in (*_SMALL, *_TENS)} | {"a", "h"}))  # a half, half a
# One scan finds, at each word start: a keyword, a number in words (group "number") or a gate word. No two of them
# start at one place and none holds another's start, so the scan finds every keyword and number in words that scanning
# for each alone would; the one exception, a word X inside an entry "in X at", is looked for inside such a keyword
# (reasoning._scan). A constraint name (min_risk_reward) is the limit, not the trade: it is tried first, at every
# word; letters and digits are taken for good (++, *+), as giving one back would put a letter or digit where it needs _.
# The figures come from the same scan: a figure starts with no letter and a word with no digit or $, so neither hides
# the other's start (but for "R/R" after a figure, see _FIGURE, and "in X at", see reasoning._scan).
_WORDS = re.compile(  # every alternative starts a word: one \b up front keeps the scan fast
    r"\b(?:(?P<name>[a-z]++[0-9]*+(?:_[a-z0-9]+)+)"
    f"|{_by_first_letter([*_KEYWORD_WORDS, *((f'gate_{kind}', words) for kind, words in _GATE_WORDS)])}"
    rf"|(?=[{_NUMBER_LETTERS}])(?P<number>(?P<whole>{_CARDINAL})(?P<half>\s+and\s+a\s+half)?"
    rf"(?P<point>\s+point(?:\s+(?:{_DIGIT_WORD}))+)?|(?P<onlyhalf>a\s+half|half\s+a)))\b",
    re.IGNORECASE,
)


def _one_scan(figure: str, words: str) -> str:
    """The figures and the words in one pattern. Both start where no word character stands before, which re looks at
    once, first: most places are inside a word, and there that one look ends the try (a figure looks back for . and ,
    only past it). The figures come first: after the look, re tries [$\\d] on one compare."""
    return (r"(?<!\w)(?:" + figure.replace(r"(?<![\w.,].)", r"(?<![.,].)", 1) + "|"
            + words.removeprefix(r"\b").removeprefix(r"(?<!\w)") + ")")


_SCAN = re.compile(_one_scan(_FIGURE.pattern, _WORDS.pattern), re.IGNORECASE)
# A word's group: (the keyword it is, the gate it is), either None.
_TOKEN_KINDS = {"name": ("name", None)} | {
    group: (None, kind.removeprefix("gate_")) if kind.startswith("gate_") else (kind, "side" if kind == "side" else None)
    for group in _SCAN.groupindex for kind in [group.rpartition("_")[0]] if kind}
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
# The last word of every phrase _SIDE_BEFORE finds: such a phrase ends a side's last two words before it, or none does.
_SIDE_BEFORE_ENDS = ("not", "no", "never", "don't", "won't", "avoid", "of", "than", "go", "going", "enter", "entering",
                     "open", "opening", "get", "getting", "initiate")
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
_Rx = namedtuple("_Rx", "scan multiple unit of_equity limit_after ratio_after ratio_word named_after "
                        "times_risk at side side_before exit exit_after hold")
_ANY_TEXT = _Rx(_SCAN, _MULTIPLE, _UNIT, _OF_EQUITY, _LIMIT_AFTER, _RATIO_AFTER, _RATIO_WORD,
                _NAMED_AFTER, _TIMES_RISK, _AT, _SIDE, _SIDE_BEFORE, _EXIT, _EXIT_AFTER, _HOLD)


def _lowered(rx: re.Pattern, word_start: bool = False) -> re.Pattern:
    """The same pattern for text already lowered, matching case-sensitively: on such text the two find exactly
    the same spans, and re runs a case-sensitive scan several times faster. `word_start`: every alternative starts
    with a letter, so the leading \\b is "no word character before, a letter next", which re rejects sooner."""
    source = rx.pattern.replace("(?P<", "\0").lower().replace("\0", "(?P<")
    if word_start:
        source = r"(?<!\w)(?=[a-z])" + source.removeprefix("\\b")
    return re.compile(source, rx.flags & ~re.IGNORECASE)


_LOWERED = _Rx(*(re.compile(_one_scan(_lowered(_FIGURE).pattern, _lowered(_WORDS, word_start=True).pattern))
                 if name == "scan" else _lowered(rx, word_start=name == "multiple")
                 for name, rx in zip(_Rx._fields, _ANY_TEXT)))


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
