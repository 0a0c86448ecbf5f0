# Run `make help` for the targets.
GO ?= go
RUNBOOK ?= runbooks/helse-nord/runbook.yaml
# Generated man pages go here (under bin/, not committed: they follow the
# commands' help, so they are built with the binary).
MANDIR ?= bin/man

.PHONY: help build man test unit integration bench vet check lab-up lab-down rehearse pictures clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/cutover
	$(GO) build -o bin/cutover ./cmd/cutover

man: build ## man pages of every command into bin/man/man1 (MANDIR=dir to change; read with man -M bin/man cutover)
	rm -rf $(MANDIR)/man1
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) bin/cutover gen-man $(MANDIR)/man1

vet: ## go vet every package
	$(GO) vet ./...

unit: ## unit tests with the race detector (no root needed)
	$(GO) test -race -short -count=1 ./...

integration: ## integration tests: FRR lab, nftables, netlink (as root)
	$(GO) test -count=1 -p 1 -timeout 15m ./...

test: ## everything CI runs (scripts/test)
	scripts/test

bench: ## benchmarks with several iterations
	$(GO) test -run '^$$' -bench . -benchmem -p 1 ./...

check: vet unit integration ## vet, unit and integration tests

lab-up: build ## bring the built-in lab up (root)
	bin/cutover lab up

lab-down: build ## tear the built-in lab down (root)
	bin/cutover lab down

rehearse: build ## rehearse RUNBOOK in the lab (root)
	bin/cutover lab rehearse $(RUNBOOK)

pictures: build ## the README pictures (docs/img: live view, report) from a rehearsal of RUNBOOK (root or sudo)
	scripts/pictures $(RUNBOOK)

clean: ## remove build output
	rm -rf bin
