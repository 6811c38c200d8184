"""Named challenges shipped as data (presets/challenges/*.json): the rule sets a funded-account trader recognises.

Each file is `{title, about, phases: [ChallengeRules fields, ...]}`; the names are generic (one_step,
two_step), not a firm's.
"""

from __future__ import annotations

from pathlib import Path

from core.backtest.challenge import Challenge, ChallengeRules
from core.exchange.errors import InvalidInput
from core.exchange.json_input import read_json

CHALLENGES_DIR = Path(__file__).resolve().parents[2] / "presets" / "challenges"


def list_challenges() -> list[str]:
    """Names of the shipped challenge templates."""
    return sorted(path.stem for path in CHALLENGES_DIR.glob("*.json"))


def load_challenge(name: str) -> Challenge:
    """A shipped challenge template by name, validated."""
    if name not in list_challenges():
        raise InvalidInput(f"template: unknown challenge {name!r}; known: {', '.join(list_challenges())}")
    data = read_json((CHALLENGES_DIR / f"{name}.json").read_text())
    phases = []
    for number, fields in enumerate(data.get("phases") or [], start=1):
        try:
            phases.append(ChallengeRules(**fields))
        except TypeError as error:  # an unknown or missing field
            raise InvalidInput(f"challenge {name}, phase {number}: {error}") from None
        except InvalidInput as error:
            raise InvalidInput(f"challenge {name}, phase {number}: {error}") from None
    return Challenge(name=name, title=data.get("title", name), phases=tuple(phases), about=data.get("about", ""))
