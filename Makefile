# The verbs people type. `make help` lists them.
CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: help run test tools lint fmt openapi migration schemathesis clients bench bench-instructions symbol-order fuzz clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

run: ## Run the service on the embedded default (SQLite in ./data, 127.0.0.1:8080)
	$(CARGO) run --release -- serve

test: tools ## Run every test, on SQLite and on PostgreSQL (127.0.0.1:5432, or POAM_TEST_DATABASE_URL)
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace
else
	$(CARGO) test --workspace
endif

# regex: the OSCAL schemas' patterns use Unicode classes (\p{L}) that Python's re lacks.
TOOLS_PINS := compliance-trestle==3.12.4 openpyxl==3.1.5 jsonschema==4.26.0 regex==2026.11.19
# The current compliance-trestle (OSCAL 1.2.x) beside 3.12 (1.1.x), in a venv of its own.
TOOLS5_PINS := compliance-trestle==5.2.0 jsonschema==4.26.0 regex==2026.11.19
tools: ## The Python checkers the exchange tests use (OSCAL via compliance-trestle 3.12 and 5.x, XLSX, JSON Schema) in .venv-tools and .venv-tools5
	@for v in "tools:$(TOOLS_PINS)" "tools5:$(TOOLS5_PINS)"; do \
	  dir=.venv-$${v%%:*}; pins=$${v#*:}; \
	  if [ "$$(cat $$dir/pins 2>/dev/null)" != "$$pins" ]; then \
	    echo "installing the Python checkers into $$dir ($$pins): once, about 30 s"; \
	    if python3 -m venv $$dir && \
	       $$dir/bin/pip install --quiet --disable-pip-version-check $$pins; then \
	      echo "$$pins" > $$dir/pins; \
	    elif [ "$$CI" = true ]; then \
	      echo "cannot install the Python checkers (python3-venv, PyPI)"; exit 1; \
	    else \
	      rm -rf $$dir; \
	      echo "warning: the Python checkers could not be installed: their checks are skipped"; \
	    fi; \
	  fi; \
	done

lint: ## Formatting and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

openapi: ## Regenerate openapi/openapi.json and openapi/export-bundle.schema.json from the code
	$(CARGO) run --quiet -- openapi > openapi/openapi.json
	$(CARGO) run --quiet -- openapi --bundle-schema > openapi/export-bundle.schema.json

migration: ## Create a migration in both backends' folders: make migration name=add_milestones
	@test -n "$(name)" || { echo "usage: make migration name=snake_case_name"; exit 2; }
	@stamp=$$(date -u +%Y-%m-%d-%H%M%S); \
	for backend in postgres sqlite; do \
	  dir=migrations/$$backend/$${stamp}_$(name); mkdir -p $$dir; \
	  printf -- '-- %s: %s (keep in step with the other backend)\n' "$$backend" "$(name)" > $$dir/up.sql; \
	  printf -- '-- undo %s\n' "$(name)" > $$dir/down.sql; \
	  echo "created $$dir"; \
	done

schemathesis: ## Property-based API tests against a throwaway server (random seed)
	SCHEMATHESIS_SEED=random bash .ci/schemathesis.sh

clients: ## Generate the Python and TypeScript clients from openapi/openapi.json, type-check them, run clients/*/scenario.* against a throwaway server
	bash .ci/clients.sh

bench: ## Load figures (wrk): GET by id, list page, create; writes nothing but stdout
	bash bench/run.sh

bench-instructions: ## Instructions per GET by id (callgrind), the service against the ceiling: a figure that does not swing
	bash bench/instructions.sh

symbol-order: ## Rewrite link/poam.order (the code layout of the shipped build) from callgrind on a dist build; rebuild after
	bash bench/symbol-order.sh

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := oscal_import item_document query_words
fuzz: ## Fuzz the importers and parsers with cargo fuzz (nightly), FUZZ_SECONDS each (default 60)
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t; $(CARGO) +nightly fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 2>&1 | grep -E '^(#[0-9]+ +DONE|Done|==.*ERROR|SUMMARY|artifact_prefix)' || exit 1; \
	done

clean: ## Remove build output and local data
	$(CARGO) clean
	rm -rf data .venv .venv-tools .venv-tools5
