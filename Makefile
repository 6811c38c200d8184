# Two commands on a fresh machine: `make run` starts the app, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHROMIUM := /usr/bin/chromium

.PHONY: run test bench live-check browser screenshots clean

# The runtime venv; rebuilt when the pins change.
$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Debian's chromium for the browser tests (Playwright never downloads a browser here).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium (the browser tests will be skipped)"; fi; }

run: $(BIN)/.runtime
	$(BIN)/streamlit run app.py

# pytest exits 5 when it collects nothing: that fails here too, as it should.
test: $(BIN)/.dev browser
	$(BIN)/python -m pytest -q

bench: $(BIN)/.dev
	$(BIN)/python -m bench

# A PNG of each page under docs/ (shown in the README), from the running app in headless chromium.
screenshots: $(BIN)/.dev browser
	$(BIN)/python docs/screenshots.py

live-check: $(BIN)/.dev
	$(BIN)/python scripts/live_check.py

clean:
	rm -rf $(VENV) .pytest_cache
