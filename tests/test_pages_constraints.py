"""The Constraints editor: what the widgets hold is the JSON, the diff, the saved preset and the pushed schema."""

import json

import pytest

import core
from tests.support.ui_fixtures import texts
from ui import constraint_editor as editor
from ui import session

PAGE = "pages/constraints.py"


def live_json(at) -> dict:
    return json.loads(at.code[0].value)


def diff(at) -> list[dict]:
    """The diff table's rows, as the reader sees them."""
    table = at.table[0].value
    return table.reset_index().to_dict("records")


def button(at, label):
    return next(b for b in at.button if b.label == label)


def test_every_field_has_a_control_labelled_in_words_with_its_name_and_help_from_the_schema(app):
    at = app(PAGE)
    sliders = {s.key: s for s in at.slider}
    numeric = [f for f, info in core.Constraints.model_fields.items() if info.annotation in (float, int, float | None)]
    for field in numeric:
        slider = sliders[session.CONSTRAINT_FIELD + field]
        assert slider.help == core.Constraints.model_fields[field].description
        assert slider.label.endswith(f" ({field})") and slider.label[0].isupper()
    assert sliders["c.max_single_trade_pct"].label == "Largest single trade (max_single_trade_pct)"
    assert at.time_input(key="c.trading_cutoff_time") and at.checkbox(key=session.C_NO_CUTOFF)
    assert at.multiselect(key="c.allowed_symbols").value == ["AMZN", "MSFT", "TSLA", "BTC-USD"]
    assert at.multiselect(key="c.abort_on_violations").label.endswith("(abort_on_violations)")
    assert at.multiselect(key="c.abort_on_violations").options == list(core.RULE_NAMES)


def test_percentages_are_shown_as_percent_and_stored_as_fractions(app):
    at = app(PAGE)
    trade = at.slider(key="c.max_single_trade_pct")
    assert trade.value == 5.0 and "%" in trade.proto.format  # 5.0 %
    trade.set_value(2.5).run()
    assert live_json(at)["max_single_trade_pct"] == 0.025
    assert diff(at) == [{"field": "Largest single trade (max_single_trade_pct)",
                         "moderate": "5.0 %", "edited": "2.5 %"}]
    at.selectbox(key=session.C_PRESET).set_value("strict").run()
    assert at.slider(key="c.max_daily_loss_pct").value == 0.2  # 0.002 of equity
    assert live_json(at)["max_daily_loss_pct"] == 0.002


def test_a_value_finer_than_the_slider_step_is_shown_with_its_decimals_not_rounded(app):
    at = app(PAGE)
    schema = {**core.load_preset("moderate").model_dump(mode="json"), "max_leverage": 1.55, "max_position_pct": 0.1234}
    at.file_uploader(key=session.C_UPLOAD).set_value(("fine.json", json.dumps(schema).encode(), "application/json")).run()
    assert live_json(at)["max_leverage"] == 1.55 and live_json(at)["max_position_pct"] == 0.1234
    assert at.slider(key="c.max_leverage").proto.format == "%.2f"
    assert at.slider(key="c.max_position_pct").proto.format == "%.2f %%"  # 12.34 %


def test_moving_a_slider_changes_the_live_json_and_the_diff(app):
    at = app(PAGE)
    assert live_json(at)["max_leverage"] == 1.5
    at.slider(key="c.max_leverage").set_value(2.5).run()
    assert live_json(at)["max_leverage"] == 2.5
    assert diff(at) == [{"field": "Most leverage (max_leverage)", "moderate": "1.5",
                         "edited": "2.5"}]


def test_no_cutoff_and_no_atr_rule_write_null(app):
    at = app(PAGE)
    at.checkbox(key=session.C_NO_CUTOFF).check().run()
    assert live_json(at)["trading_cutoff_time"] is None
    at.checkbox(key=session.C_ATR_OFF).uncheck().run()
    assert live_json(at)["min_stop_atr_multiple"] == 1.0


def test_pushing_an_edited_schema_changes_what_trade_review_uses_and_names_it_as_edited(app, app_store):
    at = app(PAGE)
    at.slider(key="c.max_leverage").set_value(2.5).run()
    at.slider(key="c.max_rounds").set_value(2).run()
    button(at, "Use in Trade Review").click().run()
    assert [t.value for t in at.title] == ["Trade Review"]
    assert at.selectbox(key=session.TR_SCHEMA).value == "Edited schema (from moderate)"
    # AppTest keeps requesting the page it last switched to itself; a browser follows st.switch_page.
    at.switch_page("pages/trade_review.py").run()
    assert at.selectbox(key=session.TR_SCHEMA).value == "Edited schema (from moderate)"
    at.button(key=session.TR_RUN).click().run()
    stored = app_store.get_exchange(at.session_state[session.LAST_RUN_ID])
    assert stored.constraint_snapshot.max_leverage == 2.5
    assert stored.constraint_snapshot.max_rounds == 2


def test_a_saved_preset_pushed_to_trade_review_keeps_its_name(app, app_store):
    at = app(PAGE)
    at.slider(key="c.min_risk_reward").set_value(2.5).run()
    at.text_input(key=session.C_SAVE_NAME).input("My RR 2.5").run()
    button(at, "Save as preset").click().run()
    assert at.selectbox(key=session.C_PRESET).value == "My RR 2.5 (custom)"
    assert at.caption and any(c == "No changes." for c in texts(at, "caption"))  # the diff is now against it
    button(at, "Use in Trade Review").click().run()
    at.switch_page("pages/trade_review.py").run()
    assert at.selectbox(key=session.TR_SCHEMA).value == "My RR 2.5 (custom)"
    assert at.selectbox(key=session.TR_SCHEMA).label == "Preset"  # a saved schema is a preset on every page
    assert not any(o.startswith("Edited") for o in at.selectbox(key=session.TR_SCHEMA).options)


def test_the_json_the_diff_and_the_push_read_the_widgets_after_every_change(app, app_store):
    at = app(PAGE)
    for value in (1.6, 1.7, 1.8, 1.9, 2.0):  # five nudges, each a run of its own
        at.slider(key="c.max_leverage").set_value(value).run()
        assert live_json(at)["max_leverage"] == value == at.slider(key="c.max_leverage").value
        assert diff(at)[0]["edited"] == f"{value:.1f}"
    button(at, "Use in Trade Review").click().run()
    assert at.session_state[session.PUSHED_SCHEMA]["max_leverage"] == 2.0


def test_derived_values_are_rounded_as_the_sliders_show_them():
    derived = {**core.load_preset("moderate").model_dump(mode="json"), "min_risk_reward": 1.5009}
    assert editor.rounded(derived)["min_risk_reward"] == 1.5
    finer = {**derived, "max_position_pct": 0.1234}  # imported so, and not derived: kept as it is
    assert editor.rounded(finer, unchanged_from={**finer, "min_risk_reward": 2.0}) == {**finer, "min_risk_reward": 1.5}
    assert editor.shown("min_risk_reward", 1.5) == "1.50"
    assert editor.shown("max_daily_loss_pct", 0.002) == "0.2 %"
    assert editor.shown("min_stop_atr_multiple", None) == "off"


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
    "nested 100,000 deep": b"[" * 100_000,
    "a 5,000-digit number": b'{"max_leverage": ' + b"7" * 5000 + b"}",
    "a key given twice": json.dumps(core.Constraints().model_dump(mode="json"))[:-1].encode() + b', "max_leverage": 99}',
    "a huge bad value": json.dumps({**core.Constraints().model_dump(mode="json"), "max_leverage": "x" * 100_000}).encode(),
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
    if problem == "a key given twice":
        assert "duplicate key 'max_leverage'" in errors
    assert len(errors) < 2000  # a short excerpt of the file at most, never the file


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


def test_saving_a_custom_preset_stores_it_says_saved_beside_the_button_and_lists_it(app, app_store):
    at = app(PAGE)
    at.slider(key="c.min_risk_reward").set_value(2.0).run()
    at.text_input(key=session.C_SAVE_NAME).input("my swing").run()
    button(at, "Save as preset").click().run()
    assert app_store.custom_presets()["my swing"].min_risk_reward == 2.0
    assert "Saved as the preset “my swing”." in texts(at, "success")
    assert "my swing (custom)" in at.selectbox(key=session.C_PRESET).options
    at.slider(key="c.min_risk_reward").set_value(2.5).run()
    assert "Saved as the preset “my swing”." not in texts(at, "success")  # what is shown is no longer what was saved
    at.switch_page("pages/trade_review.py").run()
    assert "my swing (custom)" in at.selectbox(key=session.TR_SCHEMA).options


def _history(store, strategy: str, exchanges: int, symbol="AMZN"):
    for n in range(exchanges):
        # one exchange a market day: the house Player draws its flaws from the seed, the symbol and the day
        world = core.WorldState(symbol=symbol, as_of=f"2025-03-{3 + n:02d} 10:00", price=185 + n, sma5=183 + n, sma10=180)
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
    table = next(t.value for t in at.table if "evidence" in t.value.columns)
    assert {f"{editor.WORDS[f]} ({f})" for f in evidence["changed"]} == set(table.index)
    assert all(table["evidence"].str.len() > 0)
    if "min_risk_reward" in evidence["changed"]:
        row = table.loc["Smallest reward-to-risk ratio (min_risk_reward)"]
        assert row["evidence"].startswith("25th percentile")
        assert row["derived"] == f"{derived.min_risk_reward:.2f}"  # 1.5009 reads 1.50
    confidence = next(df.value for df in at.dataframe if "confidence" in df.value.columns)
    assert "AMZN" in set(confidence["symbol"])
    button(at, "Apply to the editor").click().run()
    assert live_json(at) == editor.rounded(derived.model_dump(mode="json"))
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


def test_saving_over_an_existing_custom_preset_asks_first(app, app_store):
    at = app(PAGE)
    at.text_input(key=session.C_SAVE_NAME).input("mine").run()
    button(at, "Save as preset").click().run()
    at.slider(key="c.max_leverage").set_value(3.0).run()
    button(at, "Save as preset").click().run()
    assert any("A custom preset “mine” exists. Replace it" in w for w in texts(at, "warning"))
    assert app_store.custom_presets()["mine"].max_leverage == 1.5  # nothing replaced yet
    button(at, "Keep the old one").click().run()
    assert not texts(at, "warning") and app_store.custom_presets()["mine"].max_leverage == 1.5
    button(at, "Save as preset").click().run()
    button(at, "Replace it").click().run()
    assert app_store.custom_presets()["mine"].max_leverage == 3.0
    assert "Saved as the preset “mine”." in texts(at, "success")


def test_an_edit_survives_a_visit_to_another_page(app):
    at = app(PAGE)
    at.slider(key="c.max_single_trade_pct").set_value(2.5).run()
    at.checkbox(key=session.C_NO_CUTOFF).check().run()
    at.switch_page("pages/history.py").run()
    at.switch_page(PAGE).run()
    assert at.slider(key="c.max_single_trade_pct").value == 2.5
    assert live_json(at)["max_single_trade_pct"] == 0.025 and live_json(at)["trading_cutoff_time"] is None


# -- tiers (issue 18 §4) ---------------------------------------------------------------------------------

def test_tiers_are_added_edited_and_removed_and_the_json_and_diff_show_them(app):
    at = app(PAGE)
    assert "tiers" not in live_json(at)  # a schema without tiers reads as before
    button(at, "Add a tier").click().run()
    assert live_json(at)["tiers"] == [{"when": {"drawdown_pct_at_least": 0.05}, "set": {"max_single_trade_pct": 0.025}}]
    at.number_input(key="c.tier0.at").set_value(3.0).run()
    at.slider(key="c.tier0.max_single_trade_pct").set_value(1.0).run()
    at.selectbox(key="c.tier0.add").set_value("max_open_positions").run()
    at.slider(key="c.tier0.max_open_positions").set_value(1).run()
    assert live_json(at)["tiers"] == [{"when": {"drawdown_pct_at_least": 0.03},
                                       "set": {"max_single_trade_pct": 0.01, "max_open_positions": 1}}]
    assert diff(at) == [{"field": "Limits that change with the book (tiers)", "moderate": "—",
                         "edited": "drawdown ≥ 3.00 %: max_single_trade_pct 1.0 %, max_open_positions 1"}]
    # A second tier on the volatility regime; then the first one goes and the second keeps its values.
    button(at, "Add a tier").click().run()
    at.selectbox(key="c.tier1.when").set_value("volatility_regime").run()
    at.selectbox(key="c.tier1.regime").set_value("high").run()
    assert live_json(at)["tiers"][1] == {"when": {"volatility_regime": "high"}, "set": {"max_single_trade_pct": 0.025}}
    next(b for b in at.button if b.key == "c.tier0.remove").click().run()
    assert live_json(at)["tiers"] == [{"when": {"volatility_regime": "high"}, "set": {"max_single_trade_pct": 0.025}}]
    assert core.parse_constraints(live_json(at)).tiers[0].when.volatility_regime == "high"
    next(b for b in at.button if b.key == "c.tier0.remove").click().run()
    assert "tiers" not in live_json(at) and not at.exception


def test_a_preset_with_tiers_loads_into_the_tier_controls_and_saves_unchanged(app, app_store):
    at = app(PAGE)
    at.selectbox(key=session.C_PRESET).set_value("funded_challenge").run()
    shipped = core.load_preset("funded_challenge").model_dump(mode="json")
    assert live_json(at) == shipped
    assert at.slider(key="c.tier1.max_single_trade_pct").value == 1.0  # the 5 % drawdown tier's 1 %
    assert at.selectbox(key="c.tier4.regime").value == "high"
    at.text_input(key=session.C_SAVE_NAME).input("my funded").run()
    button(at, "Save as preset").click().run()
    assert app_store.custom_presets()["my funded"] == core.load_preset("funded_challenge")


def test_an_invalid_tier_names_its_field(app):
    at = app(PAGE)
    button(at, "Add a tier").click().run()
    at.number_input(key="c.tier0.at").set_value(150.0).run()  # a drawdown of 150 %
    assert any("tiers.0.when" in e.value and "less than or equal to 1 (got 1.5)" in e.value for e in at.error)
