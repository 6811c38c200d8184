"""The data contracts: one pydantic model per thing the app passes around (SPEC §3).

They validate input at the edges, give Claude its tool schemas and serialise artifacts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Set
from datetime import datetime, time
from typing import Literal, TypeVar, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_serializer, model_validator
from pydantic.fields import FieldInfo

ET = ZoneInfo("America/New_York")

RULE_NAMES = (
    "bracket",
    "allowed_symbols",
    "max_single_trade_pct",
    "max_position_pct",
    "max_open_positions",
    "max_leverage",
    "min_risk_reward",
    "max_daily_loss_pct",
    "max_drawdown_pct",
    "min_stop_atr_multiple",
)
"""Every constraint a check can name, in the order the Coach reports them."""

BREAKER_NAMES = ("mll_breached", "daily_loss_limit", "consistency_rule", "trading_cutoff")

BEFORE_ROUND_ONE = (*BREAKER_NAMES, "allowed_symbols")
"""Every reason an exchange ends ABORT before round 1, no agent called: a breaker, or an exchange on a
symbol the constraints do not allow (SPEC §4)."""

Outcome = Literal["APPROVE", "REJECT-MAX", "ABORT", "ERROR", "INTERRUPTED"]
OUTCOMES = get_args(Outcome)
Decision = Literal["APPROVE", "REJECT", "ABORT"]  # a round's: the rules', or an independent Coach's own

# Lists of choices: each written once, here; a page or a module that shows the choices uses get_args.
VolatilityRegime = Literal["low", "medium", "high"]
TradingSession = Literal["pre_market", "NY_open", "midday", "close", "after_hours"]
PositionSide = Literal["flat", "long", "short"]

ENTRY_TYPES = ("enter_long", "enter_short")
SIDES = {"enter_long": "long", "enter_short": "short", "exit": "exit", "hold": "hold"}
"""Each action type in the trader's words: the side of a trade."""

CAPITAL = 100_000.0
"""A fresh account's equity: a Portfolio's default and a backtest's starting capital."""

MAX_PRICE = 1e9
"""The largest price a world state takes: far above any traded price, and far enough below float's
limit that the sizing arithmetic (price x size x equity) stays finite."""

MAX_SYMBOLS = 1000
"""The most symbols `allowed_symbols` lists: the S&P 500 and a crypto list fit, while the Constraints page's
multiselect (which slows with the square of its chosen values) stays quick and the schema in Claude's prompt stays
a few thousand tokens. A 380,000-symbol import is refused instead of freezing the page."""

MAX_TIERS = 20
"""The most tiers a schema holds: one per condition and threshold a trader would write, with room to spare."""

TIER_CONDITIONS = ("drawdown_pct_at_least", "daily_loss_pct_at_least", "profit_pct_at_least", "volatility_regime")
"""What a tier's `when` may name: three measures of the portfolio and the world's volatility regime."""

TIER_LIMITS = ("max_position_pct", "max_single_trade_pct", "max_leverage", "max_drawdown_pct", "max_daily_loss_pct",
               "consistency_rule_pct", "max_open_positions", "min_risk_reward", "min_stop_atr_multiple")
"""The limits a tier may set: the numbers. A `min_` limit is stricter higher, every other one stricter lower."""

_SYMBOL = re.compile(r"^[A-Z0-9^][A-Z0-9.\-=/]{0,19}$")


def normalise_symbol(value: object) -> str:
    """Upper-case a ticker and reject anything that is not one (AMZN, BTC-USD, BRK.B, ES=F)."""
    if not isinstance(value, str):
        raise ValueError(f"a symbol must be text, got {value!r}")
    symbol = value.strip().upper()
    if not _SYMBOL.match(symbol):
        raise ValueError(f"{value!r} is not a ticker symbol (letters, digits and . - = / ^ only)")
    return symbol


def parse_cutoff(value: object) -> time | None:
    """'16:20' or '9:30' -> a time; None or '' -> no cutoff."""
    if value is None or value == "":
        return None
    if isinstance(value, time):
        return value
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{value!r} is not a time of day as HH:MM")
    return time(int(match[1]), int(match[2]))


M = TypeVar("M", bound=BaseModel)
# The four slots every pydantic model fills, each set through its own descriptor: object.__setattr__ would look the
# name up again on every call, and a verdict's checks alone make a dozen models.
_SET_DICT, _SET_FIELDS_SET, _SET_EXTRA, _SET_PRIVATE = (BaseModel.__dict__[slot].__set__ for slot in (
    "__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))


def built(model: type[M], values: dict, given: Set[str] | None = None) -> M:
    """A `model` holding `values` (every field, in the model's order; `given`: the fields set, all of them unless
    said), without validation: only for values core's own code made, of exactly the types the fields hold, which
    validating would return as they are. An exchange builds a few dozen such models (each check of a verdict is
    one), and validating what core itself just computed was the largest part of its time."""
    instance = object.__new__(model)
    _SET_DICT(instance, values)
    _SET_FIELDS_SET(instance, set(values if given is None else given))
    _SET_EXTRA(instance, None)
    _SET_PRIVATE(instance, None)
    return instance


@functools.lru_cache(maxsize=256)
def _cutoff(value: str | None) -> time | None:
    # A validated schema's cutoff is text or None: parsed once, not at every check of a backtest's days.
    return parse_cutoff(value)


class Strict(BaseModel):
    """Unknown keys, NaN/inf and wrong types are errors everywhere: no true-as-1.0, no "3"-as-3.

    Assignments are validated too: `portfolio.today_pnl = float("nan")` is refused like the same value given at first.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, validate_assignment=True)

    def __setattr__(self, name: str, value: object) -> None:
        if name in type(self).model_fields:
            # Check the whole model with the new value first: a rule across fields (peak >= equity) that
            # fails must leave the model as it was, which pydantic's own assignment check does not promise.
            type(self).model_validate({**self.__dict__, name: value})
        super().__setattr__(name, value)


class Constraints(Strict):
    """The Coach's constraint schema. Percentages are fractions (0.05 = 5 %)."""

    max_position_pct: float = Field(0.15, gt=0, le=1, description="Largest absolute position in one symbol, as a fraction of equity.")
    max_single_trade_pct: float = Field(0.05, gt=0, le=1, description="Largest size of one entry action, as a fraction of equity.")
    max_leverage: float = Field(1.5, gt=0, le=100, description="Largest sum of absolute positions after the proposal, in multiples of equity.")
    max_drawdown_pct: float = Field(0.10, gt=0, le=1, description="Largest drawdown from peak equity, counting the risk to the stops of the new entries.")
    max_daily_loss_pct: float = Field(0.02, gt=0, le=1, description="Largest loss today, counting the risk to the stops of the new entries, as a fraction of start-of-day equity.")
    consistency_rule_pct: float = Field(0.50, gt=0, le=1, description="No trading once today's gain exceeds this fraction of the cumulative profit.")
    trading_cutoff_time: str | None = Field("16:20", description="No new exchange at or after this time of day (ET, HH:MM); null for no cutoff.")
    allowed_symbols: list[str] = Field(default_factory=lambda: ["AMZN", "MSFT", "TSLA", "BTC-USD"], min_length=1, max_length=MAX_SYMBOLS, description="Symbols the Player may trade.")
    max_open_positions: int = Field(3, ge=1, le=100, description="Most symbols held at once after the proposal.")
    min_risk_reward: float = Field(1.5, gt=0, le=100, description="Smallest reward-to-risk ratio of an entry (target distance over stop distance).")
    max_rounds: int = Field(3, ge=1, le=10, description="Most Player-Coach rounds before the exchange ends REJECT-MAX.")
    abort_on_violations: list[str] = Field(default_factory=lambda: ["max_leverage", "max_drawdown_pct"], max_length=len(RULE_NAMES), description="Violations that end the exchange at once (ABORT).")
    min_stop_atr_multiple: float | None = Field(None, gt=0, le=100, description="Smallest stop distance in multiples of the 14-day ATR; null for off.")
    tiers: list[Tier] = Field(default_factory=list, max_length=MAX_TIERS, description="Limits that change with the book: every tier whose `when` holds sets its values, the strictest winning where several set one limit.")

    @model_serializer(mode="wrap")
    def _without_empty_tiers(self, handler) -> dict:
        # A schema without tiers dumps as it did before tiers existed: stored run keys, artifacts and prompts stay the same.
        data = handler(self)
        if not data.get("tiers"):
            data.pop("tiers", None)
        return data

    @field_validator("trading_cutoff_time", mode="before")
    @classmethod
    def _cutoff(cls, value: object) -> str | None:
        cutoff = parse_cutoff(value)
        return None if cutoff is None else cutoff.strftime("%H:%M")

    @field_validator("allowed_symbols", mode="before")
    @classmethod
    def _symbols(cls, value: object) -> list[str]:
        if not isinstance(value, list):
            raise ValueError("must be a list of symbols")
        if len(value) > MAX_SYMBOLS:
            raise ValueError(f"{len(value)} symbols is more than the {MAX_SYMBOLS} a schema may list")
        symbols = [normalise_symbol(v) for v in value]
        return list(dict.fromkeys(symbols))

    @field_validator("abort_on_violations")
    @classmethod
    def _abort_names(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in RULE_NAMES]
        if unknown:
            raise ValueError(f"unknown constraint name {unknown[0]!r}; known: {', '.join(RULE_NAMES)}")
        return list(dict.fromkeys(value))

    def cutoff(self) -> time | None:
        """The trading cutoff as a time of day, or None."""
        return _cutoff(self.trading_cutoff_time)


class _Sparse(Strict):
    """A model whose unset (None) fields are left out of its JSON: a tier shows only what it names."""

    model_config = ConfigDict(frozen=True)

    @model_serializer(mode="wrap")
    def _sparse(self, handler) -> dict:
        return {name: value for name, value in handler(self).items() if value is not None}


class TierWhen(_Sparse):
    """When a tier is in force: exactly one condition, read from the portfolio or the world the rules already get."""

    drawdown_pct_at_least: float | None = Field(None, gt=0, le=1, description="In force while 1 - equity/peak_equity is at least this.")
    daily_loss_pct_at_least: float | None = Field(None, gt=0, le=1, description="In force while today's loss over start-of-day equity is at least this.")
    profit_pct_at_least: float | None = Field(None, gt=0, le=10, description="In force while cumulative profit over the starting equity is at least this (the phase after a target).")
    volatility_regime: VolatilityRegime | None = Field(None, description="In force while the world's volatility regime is this.")

    @model_validator(mode="after")
    def _one(self) -> TierWhen:
        named = [name for name in TIER_CONDITIONS if getattr(self, name) is not None]
        if len(named) != 1:
            raise ValueError(f"name exactly one condition of {', '.join(TIER_CONDITIONS)}, got {len(named)}")
        return self

    @property
    def condition(self) -> str:
        """The one condition this names."""
        return next(name for name in TIER_CONDITIONS if getattr(self, name) is not None)


# The values a tier sets: the same fields, bounds and words as Constraints (one definition), each optional.
TierSet = create_model(
    "TierSet", __base__=_Sparse, __doc__="The limit values a tier sets; a limit it does not name keeps its value.",
    **{name: (Constraints.model_fields[name].annotation | None,
              FieldInfo.merge_field_infos(Constraints.model_fields[name], default=None)) for name in TIER_LIMITS},
)


class Tier(Strict):
    """Limits that apply while a condition holds: `{"when": {"drawdown_pct_at_least": 0.05}, "set": {...}}`."""

    model_config = ConfigDict(frozen=True)

    when: TierWhen
    set: TierSet  # type: ignore[valid-type]

    @field_validator("set")
    @classmethod
    def _sets_something(cls, value: BaseModel) -> BaseModel:
        if not value.model_dump():
            raise ValueError(f"set at least one limit of {', '.join(TIER_LIMITS)}")
        return value

    def values(self) -> dict[str, float | int]:
        """The limits this tier sets, by name."""
        return self.set.model_dump()


Constraints.model_rebuild()


class WorldState(Strict):
    """The market snapshot the Player decides on. `as_of` is Eastern Time."""

    symbol: str
    as_of: datetime = Field(strict=False)  # ISO text from forms, files and JSON
    price: float = Field(gt=0, le=MAX_PRICE)
    sma5: float = Field(gt=0, le=MAX_PRICE)
    sma10: float = Field(gt=0, le=MAX_PRICE)
    volume: float = Field(0, ge=0)
    volatility_regime: VolatilityRegime = "medium"
    session: TradingSession = "NY_open"
    position: PositionSide = "flat"
    atr: float | None = Field(None, gt=0, le=MAX_PRICE)
    vwap: float | None = Field(None, gt=0, le=MAX_PRICE)

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: object) -> str:
        return normalise_symbol(value)

    @field_validator("as_of")
    @classmethod
    def _eastern(cls, value: datetime) -> datetime:
        # A naive time is read as ET (the trader's clock); an aware one is converted to it.
        return value.replace(tzinfo=ET) if value.tzinfo is None else value.astimezone(ET)


class Portfolio(Strict):
    """Account state before the proposal. Positions are signed fractions of equity."""

    equity: float = Field(CAPITAL, gt=0)
    peak_equity: float | None = Field(None, gt=0)
    start_of_day_equity: float | None = Field(None, gt=0)
    cumulative_pnl: float = 0.0
    today_pnl: float = 0.0
    positions: dict[str, float] = Field(default_factory=dict)

    @field_validator("positions", mode="before")
    @classmethod
    def _positions(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        positions: dict[str, object] = {}
        given: dict[str, object] = {}
        for key, size in value.items():
            symbol = normalise_symbol(key)
            if symbol in positions:
                # {"AMZN": 0.14, "amzn": 0.0} is one symbol twice: refuse it rather than keep the last one.
                raise ValueError(f"{given[symbol]!r} and {key!r} are the same symbol {symbol}; give it once")
            positions[symbol], given[symbol] = size, key
        return positions

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, data: object) -> object:
        # Peak and start-of-day equity default to equity. Filled in before validation, so that a
        # validated assignment later never writes to the model from inside its own validator.
        if isinstance(data, dict):
            equity = data.get("equity", CAPITAL)
            if isinstance(equity, (int, float)) and not isinstance(equity, bool):
                data = {**data}
                for name in ("peak_equity", "start_of_day_equity"):
                    if data.get(name) is None:
                        data[name] = float(equity)
        return data

    @model_validator(mode="after")
    def _peak(self) -> Portfolio:
        if self.peak_equity is None or self.start_of_day_equity is None:
            raise ValueError("peak_equity and start_of_day_equity must be amounts, not null")
        if self.peak_equity < self.equity:
            raise ValueError(f"peak_equity {self.peak_equity} is below equity {self.equity}")
        return self


class Action(Strict):
    """One trading action. Entries carry size and bracket; exit and hold name only the symbol."""

    action_type: Literal["enter_long", "enter_short", "exit", "hold"]
    symbol: str
    size_pct: float | None = Field(None, description="Size as a fraction of equity (0.03 = 3 %).")
    entry_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: object) -> str:
        return normalise_symbol(value)

    @model_validator(mode="after")
    def _entry_fields(self) -> Action:
        if self.action_type in ENTRY_TYPES and None in (self.size_pct, self.entry_price, self.stop_loss, self.take_profit):
            missing = [f for f in ("size_pct", "entry_price", "stop_loss", "take_profit") if getattr(self, f) is None]
            raise ValueError(f"{self.action_type} needs {', '.join(missing)}")
        return self

    @property
    def is_entry(self) -> bool:
        return self.action_type in ENTRY_TYPES


class Proposal(Strict):
    """The Player's answer: reasoning first (it streams first), then 1-3 actions."""

    reasoning: str = Field(description="Why these actions, in two to four sentences of plain text.")
    actions: list[Action] = Field(min_length=1, max_length=3)
