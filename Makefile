# The verbs people type. `make help` lists them.
CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: help run test lint fmt openapi migration schemathesis bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

run: ## Run the service on the embedded default (SQLite in ./data, 127.0.0.1:8080)
	$(CARGO) run --release -- serve

test: ## Run every test, on SQLite and on PostgreSQL (127.0.0.1:5432, or POAM_TEST_DATABASE_URL)
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace
else
	$(CARGO) test --workspace
endif

lint: ## Formatting and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

openapi: ## Regenerate openapi/openapi.json from the code
	$(CARGO) run --quiet -- openapi > openapi/openapi.json

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

bench: ## Load figures (wrk): GET by id, list page, create; writes nothing but stdout
	bash bench/run.sh

clean: ## Remove build output and local data
	$(CARGO) clean
	rm -rf data .venv
