"""Reasoning faithfulness: does the Player's reasoning say what its actions do?

A Player can write "risk 2.00, reward 8.00, ratio 4.00" while its prices give 2.50. `reasoning_check`
reads what the reasoning states about its own trade -- entry, stop, target, risk, reward, the
reward/risk ratio, the size (in % or as a fraction of equity), the side and the symbol, an exit or
a hold -- and compares every statement with the actions.

What counts as a statement: a number tied to one of those words ("stop 262.14", "R/R 1:2.5",
"3 % of equity", "target at 2.5R", "risk two and a half"), or a side tied to a trade ("long AMZN",
"go short", "buy"). Numbers about the market (sma5, ATR, price) or the limits ("the 1.5
minimum", "max size 5 %") and a value replaced in the same breath ("size cut from 8 % to 5 %":
only the 5 % counts) are not statements about the trade.

Tolerance: a stated number matches when it is within half a unit of its last stated digit
("2.5" covers 2.45..2.55, "three" covers 2.5..3.5) plus the error that quoting prices to the
cent makes in that quantity (a cent on each price for a distance, 0.01·(1+ratio)/risk for a
ratio), plus 1e-9. A stop or target number is read as a price or a distance from the entry,
whichever is nearer; with several entries a statement matches the nearest of them.
"""

from __future__ import annotations

import re

from core.exchange.schema import Proposal, built
from core.exchange.artifact import Claim, ReasoningCheck
from core.exchange.reasoning_claims import _brackets, _compare, _does, _rounded
from core.exchange.reasoning_patterns import (_ANY_TEXT, _BOUNDARY, _NOT_TICKERS, _PAIR_WORDS, _SIDE_BEFORE_ENDS,
                                              _SIZED_AFTER, _SIZED_BEFORE, _SMALL, _THEN_WORDS, _TICKER, _TOKEN_KINDS,
                                              _WORD_VALUES, _Rx, _Text, _read)

# -- reading the text ------------------------------------------------------------------------

# A keyword as a number's clause reads it: (kind, start, end).
_Keyword = tuple[str, int, int]
# A number: (start, end, value, decimals, unit, keyword). `decimals`: digits after the point as stated, half a unit of
# the last one is the rounding allowance; `unit`: "", %, R; `keyword`: the last keyword that ends before it (a
# _Keyword, or None). Plain tuples: a namedtuple costs more to build than it saves.
_Number = tuple[int, int, float, int, str, _Keyword | None]
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


# The letters re matches case-blind to an ASCII one (dotted and dotless i, the Kelvin sign, the long s): a word
# found with one of them is looked up by its ASCII spelling ("ſix" is six).
_FOLD = str.maketrans("\u0130\u0131\u212a\u017f", "iiks")


def _plain(word: str) -> str:
    return word.translate(_FOLD).lower()


def _word_number(m: re.Match) -> tuple[float, int]:
    if m["onlyhalf"]:
        return 0.5, 1
    value = 0.0
    for part in re.split(r"[\s-]+", _plain(m["whole"])):
        value += _WORD_VALUES[part]
    if m["half"]:
        return value + 0.5, 1
    if m["point"]:
        digits = [str(_SMALL.index(_plain(w))) for w in m["point"].split()[1:]]
        return float(f"{int(value)}.{''.join(digits)}"), len(digits)
    return value, 0


_MULTIPLES = {"twice": 2.0, "double": 2.0, "triple": 3.0}


def _scan(t: _Text) -> tuple[list[_Number], list[tuple[int, str]]]:
    """Every number in the text (in figures, in words, a multiple of the risk) with its unit and the last keyword that
    ends before it, in text order, and the gates (where a side, an exit or a hold may start, and its kind): one scan."""
    text, low, rx = t
    numbers: list = []
    gates: list[tuple[int, str]] = []
    keyword: _Keyword | None = None  # the last keyword so far
    size = len(text)
    for m in rx.scan.finditer(low):
        group = m.lastgroup
        unit = _FIGURE_UNITS.get(group)
        if unit is not None:
            end = m.end()
            if group == "rr":  # the figure's R starts the keyword "R/R", which ends the match
                end = m.end("r")
            elif not unit and end < size and text[end].isalpha():
                continue  # "3rd", "5min": not a quantity
            numbers.append(_figure(m, end, unit, keyword))
            if group == "rr":
                keyword = ("ratio", end - 1, m.end())
        elif group == "number":
            _word(m, t, keyword, numbers)
        else:
            kind, gate = _TOKEN_KINDS[group]
            if gate:
                _gate(m.start(), gate, low, rx, keyword, numbers, gates)
            if kind:
                if kind == "entry":  # "in X at": X may be a number, a side, an exit... that this keyword's span hides
                    _inside_entry(m, t, keyword, numbers, gates)
                keyword = (kind, m.start(), m.end())
    return numbers, gates


_FIGURE_UNITS = {"figure": "", "pct": "%", "r": "R", "rr": "R"}  # a figure's last group: its unit


def _figure(m: re.Match, end: int, unit: str, keyword: _Keyword | None) -> _Number:
    """A number in figures ("$1,250.50"), ending at `end` (its unit's end, when one follows)."""
    figure = m["figure"]
    value = float(figure.lstrip("$").replace(",", "")) if figure[0] == "$" or "," in figure else float(figure)
    return m.start(), end, value, len(figure.partition(".")[2]), unit, keyword


def _word(m: re.Match, t: _Text, keyword: _Keyword | None, numbers: list) -> None:
    """A number in words, with its unit when one follows (not "five-minute")."""
    text, low, rx = t
    unit = rx.unit.match(low, m.end())
    if unit:
        numbers.append((m.start(), unit.end(), *_word_number(m), "%" if unit["pct"] else "R", keyword))
    elif m.end() >= len(text) or not text[m.end()].isalpha():
        numbers.append((m.start(), m.end(), *_word_number(m), "", keyword))


def _gate(start: int, gate: str, low: str, rx: _Rx, keyword: _Keyword | None, numbers: list, gates: list) -> None:
    gates.append((start, gate))
    if gate == "multiple" and (m := rx.multiple.match(low, start)):
        numbers.append((start, m.end(), _MULTIPLES[_plain(m["times"])], 0, "R", keyword))


def _inside_entry(entry: re.Match, t: _Text, keyword: _Keyword | None, numbers: list, gates: list) -> None:
    """The numbers and gates inside an entry "in X at" (X: one word), read past its "in" or "on"."""
    text, low, rx = t
    for m in rx.scan.finditer(low, entry.start() + 2, entry.end()):
        group = m.lastgroup
        unit = _FIGURE_UNITS.get(group)
        if unit is not None:  # X holds no blank: no "R/R" in it
            if unit or m.end() == len(text) or not text[m.end()].isalpha():
                numbers.append(_figure(m, m.end(), unit, keyword))
        elif group == "number":
            _word(m, t, keyword, numbers)
        elif gate := _TOKEN_KINDS[group][1]:
            _gate(m.start(), gate, low, rx, keyword, numbers, gates)


def _quantity(keyword: str, unit: str, value: float, low: str, at: int, start: int, rx: _Rx) -> str | None:
    """What a number means after this keyword, given its unit; None when it is no trade claim. `low`, `at`, `start`:
    the text lowered, the keyword's start and the number's, read only for a side's "at"."""
    if unit == "R":
        return "ratio" if keyword in ("ratio", "target", "reward", "") else None
    if keyword == "side":
        if unit == "%" or value < 1:
            return "size"
        return "entry" if rx.at.search(low, at, start) else None
    if keyword in ("ratio", "entry") and unit == "%":
        return None
    return keyword or None


def _keyword_after(low: str, end: int, head: str, unit: str, value: float, rx: _Rx) -> str | None:
    """A keyword right after a number with none before it: '3 % of equity', '2.5 R/R', 'a 2.00 stop'.
    Read in the 30 characters after the number, which ends at `end`; `head`: the first of them past whitespace (each
    keyword starts o, p, l, s, t or r, so any other rules all three patterns out, and they need not be cut out)."""
    if head not in "oplstr":
        return None
    rest = low[end:end + 30]
    if rx.of_equity.match(rest):
        return "size" if unit == "%" or value < 1 else None
    if rx.ratio_after.match(rest) and rx.ratio_word.match(rest):
        return "ratio"
    m = rx.named_after.match(rest)
    return m.lastgroup if m else None


def _keyword_before(text: str, kw: _Keyword | None, floor: int, start: int) -> _Keyword | None:
    """The number's keyword `kw` (the last one that ends before it) when it is in the number's clause: after the
    previous number, at most 30 characters before `start`."""
    if kw is None:
        return None
    end = kw[2]
    if start - end > 30 or kw[1] < floor:
        return None
    # Most numbers follow their keyword after one space: a boundary between them is then that one character.
    if start - end == 1:
        return None if text[end] in ".!?;,\n" else kw
    return kw if end == start or not _BOUNDARY.search(text, end, start) else None


def _pair(number: _Number, nxt: _Number, joint: str, keyword: str, low: str, rx: _Rx) -> _Number | None:
    """A pair such as 1:2.5, 2.5:1 or "1 to 3" read as one reward/risk ratio (never a time of day like 10:30)."""
    value = number[2]
    if 1.0 not in (value, nxt[2]) or number[4] or nxt[4]:
        return None
    if joint == ":" and nxt[3] == 0 and nxt[1] - nxt[0] == 2 and value <= 23:
        return None
    if keyword == "ratio" or joint == ":" or rx.ratio_after.match(low, nxt[1]):
        other = nxt if value == 1.0 else number
        if other[2] != 1.0 or nxt[2] == value:
            return other
    return None


def _read_numbers(t: _Text, numbers: list[_Number]) -> list[tuple[str, float, int, str, str]]:
    """(quantity, value, decimals, unit, words) for each number the reasoning ties to its trade."""
    text, low, rx = t
    if not numbers:
        return []
    may_times_risk = rx is _ANY_TEXT or "risk" in low
    said = []
    carry: tuple[str | None, int] | None = None  # "from X to Y": X's meaning and words pass to Y
    floor = 0  # the end of the previous number: a keyword before it is not this number's
    for i, number in enumerate(numbers):
        start, end, value, decimals, unit, kw = number
        if start < floor:
            continue  # the second half of a pair already read
        kw = _keyword_before(text, kw, floor, start)
        floor = end
        if kw:
            keyword, at = kw[0], kw[1]
            if keyword == "name" or keyword == "block":
                carry = None
                continue
        else:
            keyword, at = "", start
        nxt = numbers[i + 1] if i + 1 < len(numbers) else None
        joint = text[end:nxt[0]].strip() if nxt else None  # what joins it to the next number
        if joint in _PAIR_WORDS and (pair := _pair(number, nxt, joint, keyword, low, rx)):
            said.append(("ratio", pair[2], pair[3], pair[4], text[at:nxt[1]]))
            floor = nxt[1]
            continue
        # The first character past the blanks after the number: most numbers are followed by one that can start no
        # keyword, "times the risk" or limit, and then their patterns need not run.
        head = low[end:end + 1]
        if head.isspace():
            head = low[end:end + 30].lstrip()[:1]
        if rx is _ANY_TEXT:
            head = _plain(head)
        if not keyword:
            keyword = _keyword_after(low, end, head, unit, value, rx) or ""
        # "three times the risk" is a ratio, whatever came before it
        times_risk = may_times_risk and head in "xt" and rx.times_risk.match(low, end)
        if times_risk:
            end, head = times_risk.end(), ""  # "" passes every look below
            quantity = "ratio"
        else:
            quantity = _quantity(keyword, unit, value, low, at, start, rx) if keyword or unit else None
        if carry:
            quantity, at = carry
        if joint in _THEN_WORDS:
            carry = quantity, at  # replaced by the next number: only the new value is a claim
            continue
        carry = None
        if quantity is None or (head in _LETTERS and rx.limit_after.match(low, end)):
            continue
        said.append((quantity, value, decimals, unit, text[at:end]))
    return said


def _symbol_after(text: str, end: int) -> tuple[str | None, int]:
    """The ticker right after a side, an exit or a hold ("long AMZN", "exit in MSFT"), and where the words end."""
    ticker = _TICKER.match(text, end)
    if ticker and ticker["sym"] not in _NOT_TICKERS:
        return ticker["sym"], ticker.end()
    return None, end


def _read_actions(t: _Text, gates: list[tuple[int, str]]) -> list[tuple[str, str, str | None, str]]:
    """(kind, side, symbol, words) for each side, exit or hold the reasoning announces: sides first, then exits, then
    holds, each in text order. Each pattern runs only where a word that can start it starts (the gates)."""
    text, low, rx = t
    found, exits, holds = [], [], []
    side_end = 0  # one side's words hold no other: "sell short" is one side
    for start, kind in gates:
        if kind == "side" and start >= side_end and (m := rx.side.match(low, start)):
            side_end = m.end()
            said = _side(t, m)
            if said:
                found.append(said)
        elif kind == "exit" and (m := rx.exit.match(low, start)):
            symbol, end = _symbol_after(text, m.end())
            if symbol or rx.exit_after.match(low[m.end():m.end() + 20]):
                exits.append(("exit", "exit", symbol, text[m.start():end]))
        elif kind == "hold" and (m := rx.hold.match(low, start)):
            symbol, end = _symbol_after(text, m.end())
            holds.append(("hold", "hold", symbol, text[m.start():end]))
    return found + exits + holds


def _side(t: _Text, m: re.Match) -> tuple[str, str, str | None, str] | None:
    """A side word announced as a trade: after a verb (go long), before a symbol or a size, or a buy or a sell."""
    text, low, rx = t
    start = m.start()
    before = None
    # A negation or a verb ends with the last word or the one before it: most sides follow other words (lowered text).
    last = low[max(0, start - 25):start].split()[-2:]
    if rx is _ANY_TEXT or (last and (last[-1].endswith(_SIDE_BEFORE_ENDS) or last[0].endswith(_SIDE_BEFORE_ENDS))):
        before = rx.side_before.search(low, max(0, start - 25), start)
    if before and before["neg"]:
        return None
    verb = bool(before and before["verb"])
    word = _plain(m["side"])
    side = "long" if word.startswith(("long", "buy")) else "short"
    symbol, end = _symbol_after(text, m.end())
    if (verb or symbol or _SIZED_BEFORE.search(text[max(0, m.start() - 12):m.start()])
            or _SIZED_AFTER.match(text, m.end()) or word.startswith(("buy", "sell"))):
        return "side", side, symbol, text[before.start() if verb else m.start():end].strip()
    return None


def reasoning_check(proposal: Proposal) -> ReasoningCheck:
    """Compare what the reasoning says about its trade with the proposal's actions."""
    return _check(proposal, _read(proposal.reasoning))


def _check(proposal: Proposal, t: _Text) -> ReasoningCheck:
    numbers, gates = _scan(t)
    claims: list[Claim] = []
    seen = set()
    held = 0  # how many claims hold
    said = _read_numbers(t, numbers)
    if said:  # the first claim is never a repeat: the brackets are needed
        brackets = _brackets(proposal.actions)
    for quantity, value, decimals, unit, words in said:
        if quantity == "size":
            if unit != "%" and value <= 1:  # a fraction of equity: 0.03 is 3 %
                value, decimals = value * 100, max(decimals - 2, 0)
            unit = "%"
        elif unit == "R":
            unit = ""
        claim = quantity, value
        if claim in seen:
            continue
        seen.add(claim)
        actual, ok = _compare(quantity, value, unit, decimals, brackets)
        held += ok
        claims.append(built(Claim, {"text": words.strip(), "quantity": quantity, "said": value, "actual": actual,
                                    "unit": unit, "ok": ok}))
    done = None  # what the actions do, in words: described once, for the first claim about them
    for kind, side, symbol, words in _read_actions(t, gates):
        claim = kind, side, symbol
        if claim in seen:
            continue
        seen.add(claim)
        done = done or ", ".join([f"{a.action_type.removeprefix('enter_')} {a.symbol}" for a in proposal.actions])
        ok = _does(side, symbol, proposal.actions)
        held += ok
        announced = f"{side} {symbol}" if symbol else side
        claims.append(built(Claim, {"text": words.strip(), "quantity": kind, "said": announced, "actual": done,
                                    "unit": "", "ok": ok}, _ACTION_CLAIM))
    return built(ReasoningCheck, {"score": _rounded(held / len(claims), 4) if claims else None, "claims": claims})


_ACTION_CLAIM = frozenset(Claim.model_fields) - {"unit"}  # the fields an action's claim is given: its unit is the default
