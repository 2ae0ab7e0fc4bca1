# sluice — every target runs on the same Node (>= 22; Node 24 from the cache when the system one
# is older). See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE := $(shell ./scripts/node.sh)
ifeq ($(NODE),)
$(error could not find or install Node.js >= 22; see the message above)
endif
export PATH := $(dir $(NODE)):$(CURDIR)/node_modules/.bin:$(PATH)
export SLUICE_NODE := $(NODE)
NODE_RUN := $(NODE) --disable-warning=ExperimentalWarning
VITEST := $(NODE_RUN) node_modules/vitest/vitest.mjs

.PHONY: help deps tools lint format typecheck test test-unit test-integration test-e2e test-node run crds install-yaml build image node-images bench bench-upstream clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

node_modules/.installed: package.json package-lock.json
	@echo "[deps] npm install with $$($(NODE) --version)"
	@# npm install, not npm ci: registry mirrors that carry only this platform's optional
	@# binaries (e.g. Biome's) leave the lockfile without the others, which npm ci rejects.
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.installed ## install npm dependencies

tools: ## build/install nats-server, kube-apiserver, etcd, kubectl, helm, prometheus, the e2e node's kubelet & co into the cache
	./scripts/tools.sh

lint: deps ## biome lint + format check
	biome check .

format: deps ## apply biome formatting and safe fixes
	biome check --write .

typecheck: deps ## tsc --noEmit over src, test, e2e, bench
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.json

test-unit: deps
	$(VITEST) run --project unit

test-integration: deps tools
	$(VITEST) run --project integration

test-e2e: deps tools
	$(VITEST) run --project e2e

test-node: deps tools node-images ## e2e tests on a real single-node cluster (root; see README "Tests")
	$(VITEST) run --project node

test: deps tools node-images lint typecheck ## lint, typecheck, unit, integration, e2e and node tests
	$(VITEST) run --project unit --project integration --project e2e --project node

run: deps ## bring up the quickstart locally (sluice dev + demo sink on :8090)
	./scripts/tools.sh nats
	./bin/sluice dev -f examples/quickstart --sink 8090

crds: deps ## regenerate crds/*.yaml from the zod schemas, then the copies and config/install.yaml
	$(NODE_RUN) scripts/gen-crds.ts
	$(NODE_RUN) scripts/render-install.ts

install-yaml: deps ## copy crds/ into config/crd and the chart, the alerts and dashboard into the chart; render config/install.yaml
	$(NODE_RUN) scripts/render-install.ts

build: deps ## src/ as JavaScript into dist/ (what the image runs; a checkout runs src/ directly)
	./scripts/build.sh

image: ## build sluice:<version> with podman, no Docker daemon or registry (Docker daemon if no podman)
	./scripts/images.sh sluice

node-images: tools ## sluice, nats-server and pause images + archives for the e2e node (skipped when it cannot run)
	./scripts/images.sh node --if-possible

bench: deps tools ## benchmarks against the raw ceiling (writes bench/results/*.json)
	$(NODE_RUN) bench/bus.ts
	$(NODE_RUN) bench/sensor.ts
	$(NODE_RUN) bench/webhook.ts
	$(NODE_RUN) bench/triggers.ts
	$(NODE_RUN) bench/controlplane.ts --count 1000

bench-upstream: deps ## sluice side by side with upstream Argo Events (builds it once from the Go module proxy; root)
	./scripts/tools.sh nats
	./scripts/upstream.sh
	$(NODE_RUN) bench/upstream.ts

clean: ## remove local state (not the tool cache)
	rm -rf node_modules .sluice test-results dist .bench-build
