"""Custom presets in the journal: schemas the trader saved under a name of their own, and naming a
stored exchange's schema after the preset it equals."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlite_utils
from pydantic import ValidationError

from core.exchange.errors import InvalidInput
from core.exchange.presets import explain, list_presets, load_preset
from core.exchange.schema import Constraints
from core.journal.db import StoreFile, named_errors

EDITED = "edited"
"""The preset column of an exchange whose schema matches no shipped or saved preset."""


class PresetNames:
    """Names a constraint snapshot after the preset it equals: shipped first, then saved, else "edited".

    The saved presets are read again only when they may have changed, not for every exchange recorded: when
    another connection committed (the connection's `pragma data_version` moved: any table, so a writer in
    another thread or process re-reads them often, never too rarely) or this store saved one (`stale`: a
    connection's own commits move no data_version)."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.shipped = {name: load_preset(name).model_dump(mode="json") for name in list_presets()}
        self._saved: list[list] | None = None  # [name, its JSON text, the text read (None until compared)]
        self._read_at: int | None = None  # the data_version they were read at

    def name(self, snapshot: dict) -> str:
        """The preset's name, or EDITED."""
        for name, constraints in self.shipped.items():
            if constraints == snapshot:
                return name
        for saved in self._saved_presets():
            if saved[2] is None:
                saved[2] = json.loads(saved[1])  # read as it is first compared, as the rows were
            if saved[2] == snapshot:
                return saved[0]
        return EDITED

    def stale(self) -> None:
        """This store saved a preset: read them again."""
        self._saved = None

    def _saved_presets(self) -> list[list]:
        version = self.db.execute("pragma data_version").fetchone()[0]
        saved = self._saved
        if saved is None or version != self._read_at:
            saved = [[name, text, None] for name, text in
                     self.db.execute("select name, constraints from presets order by name")]
            self._saved, self._read_at = saved, version
        return saved


class Presets(StoreFile):
    """The saved custom presets."""

    _names: PresetNames | None = None

    def _preset_name(self, snapshot: dict) -> str:
        """The shipped or saved preset a constraint snapshot (its JSON form) equals, else EDITED."""
        if self._names is None:
            self._names = PresetNames(self._db)
        return self._names.name(snapshot)

    @named_errors
    def save_preset(self, name: str, constraints: Constraints, evidence: dict | None = None) -> bool:
        """Save a named custom preset, with the evidence it came from when it has one (a frontier's row:
        the spec, the challenge, the figures); True when it replaced one. Shipped names are refused."""
        name = name.strip()
        if not name:
            raise InvalidInput("preset name: must not be empty")
        if name.lower() in {shipped.lower() for shipped in list_presets()}:
            # A shipped preset is a fixed reference point (tests, backtests, the derive diff): never shadow it.
            raise InvalidInput(f"preset name: “{name}” is a shipped preset and stays as shipped; choose another name")
        with self._write() as db:
            replaced = db["presets"].count_where("name = ?", [name]) > 0
            db["presets"].insert(
                {"name": name, "constraints": constraints.model_dump_json(),
                 "saved_at": datetime.now(timezone.utc).isoformat(),
                 "evidence": json.dumps(evidence, default=str) if evidence is not None else None},
                replace=True,
            )
        if self._names is not None:
            self._names.stale()
        return replaced

    @named_errors
    def preset_evidence(self, name: str) -> dict | None:
        """What a saved preset was derived from, or None."""
        rows = list(self._db["presets"].rows_where("name = ?", [name], select="evidence"))
        return json.loads(rows[0]["evidence"]) if rows and rows[0]["evidence"] else None

    @named_errors
    def custom_presets(self) -> dict[str, Constraints]:
        """The saved custom presets that still validate, by name (see unusable_presets for the others)."""
        return {name: found for name, found in self._saved_presets().items() if isinstance(found, Constraints)}

    @named_errors
    def unusable_presets(self) -> dict[str, str]:
        """Saved custom presets that no longer validate (an older app's fields, a hand-edited file), with why."""
        return {name: found for name, found in self._saved_presets().items() if isinstance(found, str)}

    def _saved_presets(self) -> dict[str, Constraints | str]:
        found: dict[str, Constraints | str] = {}
        for row in self._db["presets"].rows_where(order_by="name"):
            try:
                found[row["name"]] = Constraints.model_validate_json(row["constraints"])
            except ValidationError as error:
                found[row["name"]] = explain(error)
        return found
