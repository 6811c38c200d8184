"""The shipped constraint presets (presets/*.json) and the one way to read a schema from JSON."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from core.exchange.errors import InvalidInput
from core.exchange.json_input import excerpt, read_json, shorten
from core.exchange.schema import Constraints

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"


def explain(error: ValidationError, most: int = 5) -> str:
    """'field: message (got value)' per problem, the first `most` of them; input is quoted only in short excerpts."""
    lines = []
    problems = error.errors()
    for problem in problems[:most]:
        where = ".".join(str(part) for part in problem["loc"]) or "input"
        got = problem.get("input")
        shown = "" if isinstance(got, dict) else f" (got {excerpt(got, 80)})"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{shorten(where, 80)}: {shorten(message)}{shown}")
    if len(problems) > most:
        lines.append(f"and {len(problems) - most} more")
    return "; ".join(lines)


def parse_constraints(source: str | bytes | dict, *, require_all: bool = True) -> Constraints:
    """Validate a constraint schema from JSON text or a dict; every field is required in a preset."""
    if isinstance(source, (str, bytes)):
        source = read_json(source)
    if not isinstance(source, dict):
        raise InvalidInput(f"a constraint schema must be a JSON object, got {type(source).__name__}")
    # Every field but `tiers`: a schema without tiers (every preset written before them) is complete.
    missing = [name for name in Constraints.model_fields if name not in source and name != "tiers"]
    if require_all and missing:
        raise InvalidInput(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    try:
        return Constraints.model_validate(source)
    except ValidationError as error:
        raise InvalidInput(explain(error)) from None


def list_presets() -> list[str]:
    """Names of the shipped presets."""
    return sorted(path.stem for path in PRESETS_DIR.glob("*.json"))


def load_preset(name: str) -> Constraints:
    """A shipped preset by name, validated."""
    path = PRESETS_DIR / f"{name}.json"
    if name not in list_presets():
        raise InvalidInput(f"preset: unknown preset {name!r}; known: {', '.join(list_presets())}")
    try:
        return parse_constraints(path.read_text())
    except InvalidInput as error:
        raise InvalidInput(f"preset {name}: {error}") from None
