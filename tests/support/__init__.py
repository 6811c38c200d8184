"""Test and bench support: the fake Anthropic server, UI fixtures, hand-made bars, golden cases, builders.

Registered as pytest plugins in tests/conftest.py; bench and docs import only from here."""
