"""The Constraints editor: live JSON, pushing to Trade Review, imports, custom presets, deriving."""

import json

import pytest

import core
from tests.ui_fixtures import *  # noqa: F403
from tests.ui_fixtures import texts
from ui import session

PAGE = "pages/constraints.py"


def live_json(at) -> dict:
    return json.loads(at.json[0].value)


def button(at, label):
    return next(b for b in at.button if b.label == label)


def test_every_field_has_a_control_with_help_from_the_schema(app):
    at = app(PAGE)
    sliders = {s.key: s for s in at.slider}
    numeric = [f for f, info in core.Constraints.model_fields.items() if info.annotation in (float, int, float | None)]
    for field in numeric:
        assert session.CONSTRAINT_FIELD + field in sliders
        assert sliders[session.CONSTRAINT_FIELD + field].help == core.Constraints.model_fields[field].description
    assert at.time_input(key="c.trading_cutoff_time") and at.checkbox(key=session.C_NO_CUTOFF)
    assert at.multiselect(key="c.allowed_symbols").value == ["AMZN", "MSFT", "TSLA", "BTC-USD"]
    assert at.multiselect(key="c.abort_on_violations").options == list(core.RULE_NAMES)


def test_moving_a_slider_changes_the_live_json_and_the_diff(app):
    at = app(PAGE)
    assert live_json(at)["max_leverage"] == 1.5
    at.slider(key="c.max_leverage").set_value(2.5).run()
    assert live_json(at)["max_leverage"] == 2.5
    diff = at.dataframe[0].value
    assert diff.to_dict("records") == [{"field": "max_leverage", "moderate": "1.5", "edited": "2.5"}]


def test_no_cutoff_and_no_atr_rule_write_null(app):
    at = app(PAGE)
    at.checkbox(key=session.C_NO_CUTOFF).check().run()
    assert live_json(at)["trading_cutoff_time"] is None
    at.checkbox(key=session.C_ATR_OFF).uncheck().run()
    assert live_json(at)["min_stop_atr_multiple"] == 1.0


def test_pushing_the_schema_changes_what_trade_review_uses(app, app_store):
    at = app(PAGE)
    at.slider(key="c.max_leverage").set_value(2.5).run()
    at.slider(key="c.max_rounds").set_value(2).run()
    button(at, "Use in Trade Review").click().run()
    assert [t.value for t in at.title] == ["Trade Review"]
    assert at.selectbox(key=session.TR_SCHEMA).value == session.PUSHED_LABEL
    # AppTest keeps requesting the page it last switched to itself; a browser follows st.switch_page.
    at.switch_page("pages/trade_review.py").run()
    assert at.selectbox(key=session.TR_SCHEMA).value == session.PUSHED_LABEL
    at.button(key=session.TR_RUN).click().run()
    stored = app_store.get_exchange(at.session_state[session.LAST_RUN_ID])
    assert stored["constraint_snapshot"]["max_leverage"] == 2.5
    assert stored["constraint_snapshot"]["max_rounds"] == 2


def test_loading_a_preset_fills_every_control(app):
    at = app(PAGE)
    at.selectbox(key=session.C_PRESET).set_value("aggressive").run()
    assert live_json(at) == core.load_preset("aggressive").model_dump(mode="json")
    assert any("Loaded aggressive" in s for s in texts(at, "success"))


def test_an_invalid_symbol_is_reported_naming_the_field(app):
    at = app(PAGE)
    at.multiselect(key="c.allowed_symbols").set_value(["AMZN", "not a ticker!"]).run()
    errors = " ".join(texts(at, "error"))
    assert "allowed_symbols" in errors and "not a ticker" in errors
    assert button(at, "Use in Trade Review").disabled


BAD_FILES = {
    "not json": b"max_leverage = 2",
    "wrong types": json.dumps({**core.Constraints().model_dump(mode="json"), "max_leverage": "lots"}).encode(),
    "unknown key": json.dumps({**core.Constraints().model_dump(mode="json"), "leverage_max": 2}).encode(),
    "missing fields": json.dumps({"max_leverage": 2}).encode(),
    "a list": b"[1, 2]",
}


@pytest.mark.parametrize("problem", BAD_FILES)
def test_a_bad_upload_shows_a_clear_error_and_changes_nothing(app, problem):
    at = app(PAGE)
    before = live_json(at)
    at.file_uploader(key=session.C_UPLOAD).set_value(("bad.json", BAD_FILES[problem], "application/json")).run()
    errors = " ".join(texts(at, "error"))
    assert "Could not import bad.json" in errors and "Nothing was changed" in errors
    assert live_json(at) == before
    if problem == "wrong types":
        assert "max_leverage" in errors
    if problem == "unknown key":
        assert "leverage_max" in errors


def test_a_good_upload_replaces_the_schema(app):
    at = app(PAGE)
    schema = core.load_preset("strict").model_dump(mode="json")
    at.file_uploader(key=session.C_UPLOAD).set_value(("strict.json", json.dumps(schema).encode(), "application/json")).run()
    assert live_json(at) == schema
    assert any("Imported strict.json" in s for s in texts(at, "success"))


def test_export_offers_the_schema_as_json(app):
    at = app(PAGE)
    export = next(b for b in at.get("download_button") if b.label == "Export JSON")
    assert not export.disabled


def test_saving_a_custom_preset_stores_it_and_lists_it_with_the_shipped_ones(app, app_store):
    at = app(PAGE)
    at.slider(key="c.min_risk_reward").set_value(2.0).run()
    at.text_input(key=session.C_SAVE_NAME).input("my swing").run()
    button(at, "Save as preset").click().run()
    assert app_store.custom_presets()["my swing"].min_risk_reward == 2.0
    assert "my swing (custom)" in at.selectbox(key=session.C_PRESET).options
    at.switch_page("pages/trade_review.py").run()
    assert "my swing (custom)" in at.selectbox(key=session.TR_SCHEMA).options


def _history(store, strategy: str, exchanges: int, symbol="AMZN"):
    for n in range(exchanges):
        world = core.WorldState(symbol=symbol, as_of="2025-03-04 10:00", price=185 + n, sma5=183 + n, sma10=180)
        core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(seed=n),
                               core.HouseCoach(), store=store, strategy_id=strategy)


def test_derive_says_when_the_evidence_is_too_thin(app, app_store):
    _history(app_store, "thin", 1)
    at = app(PAGE)
    button(at, "Derive").click().run()
    warning = " ".join(texts(at, "warning"))
    assert "Too little evidence" in warning and "needs at least" in warning


def test_derive_shows_the_diff_with_evidence_and_can_be_applied_or_saved(app, app_store):
    _history(app_store, "busy", 12)
    at = app(PAGE)
    at.selectbox(key=session.C_DERIVE_STRATEGY).set_value("busy").run()
    button(at, "Derive").click().run()
    assert not at.exception
    derived, evidence = core.derive_constraints(app_store, "busy", core.load_preset("moderate"))
    assert not evidence["too_thin"]
    diff = next(df.value for df in at.dataframe if "evidence" in df.value.columns)
    assert set(diff["field"]) == set(evidence["changed"])
    assert all(diff["evidence"].str.len() > 0)
    if "min_risk_reward" in evidence["changed"]:
        assert diff.set_index("field").loc["min_risk_reward", "evidence"].startswith("25th percentile")
    confidence = next(df.value for df in at.dataframe if "confidence" in df.value.columns)
    assert "AMZN" in set(confidence["symbol"])
    button(at, "Apply to the editor").click().run()
    assert live_json(at) == derived.model_dump(mode="json")
    button(at, "Save derived as preset").click().run()
    assert "derived-busy" in app_store.custom_presets()


def test_a_custom_preset_cannot_take_a_shipped_name(app, app_store):
    at = app(PAGE)
    at.slider(key="c.max_leverage").set_value(3.0).run()
    at.text_input(key=session.C_SAVE_NAME).input("Moderate").run()
    button(at, "Save as preset").click().run()
    assert any("shipped preset" in e for e in texts(at, "error"))
    assert app_store.custom_presets() == {}
    assert core.load_preset("moderate").max_leverage == 1.5


def test_saving_under_an_existing_custom_name_replaces_it_and_says_so(app, app_store):
    at = app(PAGE)
    at.text_input(key=session.C_SAVE_NAME).input("mine").run()
    button(at, "Save as preset").click().run()
    at.slider(key="c.max_leverage").set_value(3.0).run()
    button(at, "Save as preset").click().run()
    assert any("Replaced the custom preset “mine”" in s for s in texts(at, "success"))
    assert app_store.custom_presets()["mine"].max_leverage == 3.0
