"""What a backtest is asked to do, as one pydantic model: `BacktestSpec` (and its `Costs`).

    spec = BacktestSpec(symbols=["MSFT", "AAPL"], start="2021-01-04", end="2021-12-31",
                        presets=["moderate", "strict"], costs=Costs(fee_bps=0.5))
    result = core.Backtest(spec.one(0), core.HousePlayer(), core.HouseCoach()).run()

The same model is the Backtest page's form, the CLI's options, a sweep's case and a saved job, so
each default (capital, fees, slippage, the holding limit, the depth) and each bound is written
here once. A spec is frozen: a changed copy says what changed (`with_limit` for a what-if run).
"""

from __future__ import annotations

import typing
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.exchange.errors import InvalidInput
from core.exchange.schema import CAPITAL, Constraints, normalise_symbol

Depth = Literal["fast", "standard"]
DEPTHS = typing.get_args(Depth)
"""fast: one round, no revision; standard: up to the schema's max_rounds."""

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
"""The dates a backtest may ask for: any market data there is, with room for the warm-up before it."""
MAX_BPS = 10_000.0  # a fee or slippage of a whole fill: anything above is a typo, never a cost
MAX_CAPITAL = 1e12  # far above any account, far enough below float's limit that sizes stay finite
MAX_HOLD_DAYS = 10_000  # about forty years of trading days
FEE_BPS, SLIPPAGE_BPS, HOLD_DAYS = 1.0, 2.0, 10
"""The default costs, defined once: Costs takes them, and the page's form and the CLI's options read them from Costs."""


def _explained(error: ValidationError) -> InvalidInput:
    from core.exchange.presets import explain  # presets reads files: imported when a message is needed

    # A rule across fields (start after end) has no field of its own: its message names them.
    return InvalidInput(explain(error).removeprefix("input: "))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def __init__(self, **data):
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise _explained(error) from None


class Costs(_Spec):
    """What trading costs in a backtest: fees and slippage in basis points per fill (both legs,
    against the trader), and the holding limit in bars after which an open trade closes at the close."""

    fee_bps: float = Field(FEE_BPS, ge=0, le=MAX_BPS)
    slippage_bps: float = Field(SLIPPAGE_BPS, ge=0, le=MAX_BPS)
    max_hold_days: int = Field(HOLD_DAYS, ge=1, le=MAX_HOLD_DAYS)

    def __init__(self, fee_bps: float = FEE_BPS, slippage_bps: float = SLIPPAGE_BPS, max_hold_days: int = HOLD_DAYS):
        # Positional as well as by name: Costs(1, 2, 10) was a dataclass's call and still works.
        super().__init__(fee_bps=fee_bps, slippage_bps=slippage_bps, max_hold_days=max_hold_days)

    @field_validator("max_hold_days", mode="before")
    @classmethod
    def _whole(cls, value: object) -> object:
        if isinstance(value, bool):  # True is not a number of days
            raise ValueError(f"must be a whole number of days, got {value!r}")
        return value


class NamedSchema(_Spec):
    """A constraint schema with the name it goes by in results and tables (a preset's, or 'schema N')."""

    name: str = Field(min_length=1, max_length=200)
    constraints: Constraints


def named_schemas(items) -> list[NamedSchema]:
    """Name each schema: a preset name loads that preset, a Constraints is "schema N" (N its place,
    from 1), a (name, Constraints) pair keeps its name; a name given twice gets " (2)", " (3)"..."""
    from core.exchange.presets import load_preset

    named: list[NamedSchema] = []
    for n, item in enumerate([items] if isinstance(items, (str, Constraints, NamedSchema)) else items, start=1):
        if isinstance(item, NamedSchema):
            name, constraints = item.name, item.constraints
        elif isinstance(item, str):
            name, constraints = item, load_preset(item)
        elif isinstance(item, Constraints):
            name, constraints = f"schema {n}", item
        elif isinstance(item, dict):
            name, constraints = item.get("name"), item.get("constraints")
        else:
            name, constraints = tuple(item)
        taken = {s.name for s in named}
        unique, k = name, 2
        while unique in taken:
            unique, k = f"{name} ({k})", k + 1
        named.append(NamedSchema(name=unique, constraints=constraints))
    return named


def parse_day(value: object, field: str = "date") -> date:
    """A day from YYYY-MM-DD (nothing after it), a date or a datetime; else InvalidInput naming `field`."""
    if isinstance(value, datetime):
        value = value.date()
    elif isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"{field}: {value[:40]!r} is not a date as YYYY-MM-DD") from None
    if not isinstance(value, date):
        raise InvalidInput(f"{field}: {str(value)[:40]!r} is not a date as YYYY-MM-DD")
    if not FIRST_DAY <= value <= LAST_DAY:
        raise InvalidInput(f"{field}: {value} is outside {FIRST_DAY} .. {LAST_DAY}")
    return value


class BacktestSpec(_Spec):
    """One backtest (or a comparison of two schemas on the same days), everything but the agents'
    objects and the bars: those are given to `Backtest` beside it."""

    symbols: list[str] = Field(min_length=1, max_length=1_000)
    start: date
    end: date
    presets: list[NamedSchema] = Field(min_length=1, max_length=2)
    agents: str = "house"  # which agents ran it, as the page and the CLI name them: house, claude, or your own
    seed: int = Field(0, ge=0, le=2**32 - 1)  # the house Player's seed
    depth: Depth = "standard"
    costs: Costs = Costs()
    capital: float = Field(CAPITAL, gt=0, le=MAX_CAPITAL)
    walk_forward_split: float = Field(0.7, gt=0, lt=1)  # the in-sample share of the days

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return value
        symbols = [normalise_symbol(s) for s in value]
        if len(set(symbols)) < len(symbols):  # "msft" and "MSFT" are one symbol
            raise ValueError(f"need different symbols, got {', '.join(symbols)}")
        return symbols

    @field_validator("start", "end", mode="before")
    @classmethod
    def _day(cls, value: object, info) -> date:
        return parse_day(value, info.field_name)

    @field_validator("presets", mode="before")
    @classmethod
    def _presets(cls, value: object) -> object:
        return named_schemas(value)

    @model_validator(mode="after")
    def _order(self) -> BacktestSpec:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    @property
    def symbol(self) -> str:
        """The symbol, or the portfolio's symbols joined by commas."""
        return ",".join(self.symbols)

    @property
    def preset(self) -> NamedSchema:
        """The first (or only) schema."""
        return self.presets[0]

    def one(self, i: int) -> BacktestSpec:
        """The same spec with only its i-th schema: what one run of a comparison runs."""
        return self.model_copy(update={"presets": [self.presets[i]]})

    def runs(self) -> list[BacktestSpec]:
        """One spec per schema, in order."""
        return [self.one(i) for i in range(len(self.presets))]

    def changed(self, **fields) -> BacktestSpec:
        """A copy with some fields changed, validated like a new spec."""
        return BacktestSpec(**{**self.model_dump(exclude=set(fields)), **fields})

    def with_limit(self, field: str, value, i: int = 0) -> BacktestSpec:
        """The same backtest with one constraint of its i-th schema changed and nothing else (a what-if:
        same symbols, days, agents, costs); the schema is named after the change, e.g.
        "moderate, max_leverage=2.0"."""
        schema = self.presets[i]
        if field not in Constraints.model_fields:
            raise InvalidInput(f"constraint: {field!r} is not a field of the constraint schema")
        try:
            constraints = Constraints.model_validate({**schema.constraints.model_dump(), field: value})
        except ValidationError as error:
            raise _explained(error) from None
        return self.changed(presets=[NamedSchema(name=f"{schema.name}, {field}={value}", constraints=constraints)])

    def forbidden(self) -> dict[str, list[str]]:
        """Per schema name, the symbols of the book its allowed_symbols leave out: under it they never trade."""
        return {p.name: [s for s in self.symbols if s not in p.constraints.allowed_symbols] for p in self.presets}

    def book_allowed(self) -> BacktestSpec:
        """The same spec with every symbol of the book added to each schema's allowed_symbols, names kept
        (what a sweep's allow_symbol does), so each schema can trade the whole book."""
        return self.changed(presets=[NamedSchema(name=p.name, constraints=p.constraints.model_copy(update={
            "allowed_symbols": [*p.constraints.allowed_symbols, *self.forbidden()[p.name]]})) for p in self.presets])

    def settings(self, player=None) -> dict:
        """The costs, capital and depth as a stored run records them (with the Player's model and
        seed): a part of the run key, so a stored run resumes only under the same settings."""
        return {"capital": self.capital, "fee_bps": self.costs.fee_bps, "slippage_bps": self.costs.slippage_bps,
                "max_hold_days": self.costs.max_hold_days, "depth": self.depth,
                "player_model": getattr(player, "model", None), "player_seed": getattr(player, "seed", None)}


def spec_of_call(symbols, start, end, constraints, player, coach, *, capital: float = CAPITAL, costs: Costs = Costs(),
                 depth: str = "standard", preset: str = "custom", walk_forward_split: float = 0.7):
    """The spec of the call of earlier versions: Backtest(symbols, start, end, constraints, player, coach, ...)."""
    if not isinstance(constraints, Constraints):
        raise InvalidInput(f"constraints: need a Constraints, got {type(constraints).__name__}")
    spec = BacktestSpec(symbols=symbols, start=start, end=end, presets=[(preset, constraints)], depth=depth,
                        costs=costs, capital=capital, walk_forward_split=walk_forward_split,
                        seed=spec_seed(getattr(player, "seed", None)))
    return spec, (player, coach)


def spec_seed(seed) -> int:
    """A Player's seed as a spec records it (0 for an agent without a whole-number seed)."""
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32 else 0
