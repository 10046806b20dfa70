# The commands a user needs: `make demo` + `make call` (a first call, all local), `make dev` (serve
# locally against OpenAI), `make test` (everything CI checks), `make deploy` (to AWS).
SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python)
VENV ?= .venv
BIN := $(VENV)/bin
SAM_VENV ?= .venv-sam
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
# The local stack's port and the fake OpenAI's (make dev, make demo, make call); the environment's win.
PORT ?= 3000
FAKE_PORT ?= 9100
# make call: the dialed number (required) and the caller (fictional: +1 NXX 555-0100..0199).
TO ?=
FROM ?= +12125550123
# sam build needs a python3.13 on PATH (the Lambda runtime); find-python prefers it.
BUILD_PATH := $(dir $(PYTHON)):$(PATH)

.PHONY: help install browser dev demo call fake test lint unit e2e e2e-isolated template build deploy bench \
	events clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# Two stamps: what serving locally needs (make dev, demo, call), and on top of it the test toolchain.
$(BIN)/.local-installed: requirements.txt requirements-local.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-local.txt
	touch $@

$(BIN)/.installed: $(BIN)/.local-installed requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed:
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli cfn-lint
	touch $@

install: $(BIN)/.installed ## create .venv with everything for dev and tests

# The browser tests drive Debian's Chromium (Playwright never downloads a browser). A fresh Debian machine
# has none: install it when we can (root with apt-get), else stop at once with the one command to run.
CHROMIUM ?= $(or $(CHROMIUM_PATH),/usr/bin/chromium)
browser: ## make sure Chromium is installed for the browser tests (apt-get on Debian, as root)
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing chromium (apt-get; once per machine)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "Chromium is missing at $(CHROMIUM). Run: sudo apt-get update && sudo apt-get install -y chromium" >&2; \
		echo "(or set CHROMIUM_PATH to a Chromium binary)" >&2; exit 1; \
	fi; \
	test -x "$(CHROMIUM)" || { echo "apt-get ran but $(CHROMIUM) is still missing" >&2; exit 1; }

dev: $(BIN)/.local-installed ## serve every route and the page on http://127.0.0.1:3000 (PORT=...) with .env's OpenAI key
	$(BIN)/python -m local_api --port $(PORT)

demo: $(BIN)/.local-installed ## the local stack on :3000 wired to a fake OpenAI on :9100: no AWS, no key (Ctrl-C stops both)
	$(BIN)/python -m scripts.demo serve --port $(PORT) --fake-port $(FAKE_PORT)

call: $(BIN)/.local-installed ## a SIP call into `make demo` with a tool call, then its record: make call TO=+12125550150
	$(BIN)/python -m scripts.demo call --port $(PORT) --fake-port $(FAKE_PORT) --to "$(TO)" --from "$(FROM)"

fake: $(BIN)/.local-installed ## only the fake OpenAI (real WebRTC peer) on 127.0.0.1:9100 (FAKE_PORT=...)
	$(BIN)/python -m tests.fake_openai --port $(FAKE_PORT) --webrtc

test: lint unit template ## lint, type-check, all tests, template checks

lint: $(BIN)/.installed ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/make_events.py --check
	$(BIN)/python scripts/make_openapi.py --check
	$(BIN)/python scripts/check_agents.py

unit: $(BIN)/.installed browser ## pytest
	$(BIN)/pytest

e2e: $(BIN)/.installed browser ## only the browser tests (Chromium + aiortc fake; screenshots in artifacts/)
	$(BIN)/pytest tests/e2e -s

e2e-isolated: $(BIN)/.installed browser ## the browser tests in a network namespace with only loopback (root)
	unshare -n sh -c 'ip link set lo up && $(BIN)/pytest tests/e2e -s'

template: $(SAM_VENV)/.installed ## cfn-lint and sam validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint

build: $(SAM_VENV)/.installed ## sam build (offline-capable, arm64 wheels, no Docker)
	PATH="$(BUILD_PATH)" $(SAM) build

deploy: build ## sam build, then sam deploy --guided (asks for the stack's settings; needs AWS credentials)
	$(SAM) deploy --guided

bench: $(BIN)/.installed build ## performance figures vs targets (a few minutes; writes artifacts/bench.json)
	$(BIN)/python -m bench.run

events: $(BIN)/.installed ## regenerate events/*.json
	$(BIN)/python scripts/make_events.py

clean: ## remove build output and caches
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -not -path './.venv*' -exec rm -rf {} +
