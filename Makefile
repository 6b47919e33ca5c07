# Local environment and checks; DESIGN.md section 11, README.
.PHONY: up down demo test lint build build-local bootstrap status export undo erase bench bench-memory bench-webhooks cold-start

up:        ## emulator + resources + functions (cargo lambda watch, :9000) + relay, in the background; FAULT_PROXY=1 make up runs the functions through the fault proxy (:4567)
	scripts/up.sh

down:      ## stop everything `make up` started
	scripts/down.sh

demo: up   ## upload samples/ as account demo, print each report and the contacts written
	.venv/bin/python scripts/demo.py

test:      ## every test, unit and end-to-end, and the Python lint; stops the stack at the end
	scripts/test.sh

lint: bootstrap  ## ruff check of the Python helpers (rules in ruff.toml; make test runs it too)
	.venv/bin/ruff check .

build: bootstrap  ## release binaries for AWS Lambda arm64 in target/lambda/; zig (the linker) comes from .venv
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 -p import-contacts -p contact-events

build-local: bootstrap  ## the same release binaries for x86_64 (LocalStack's Lambda on an Intel/AMD host)
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release -p import-contacts -p contact-events

bootstrap: ## .venv with the pinned emulators (moto; dynoxide, built once) and tools
	scripts/bootstrap.sh

status:    ## recent imports of ACCOUNT=... with their progress (job items)
	.venv/bin/python scripts/status.py $(ACCOUNT)

export:    ## export ACCOUNT=... [LIST=...] [CHANNEL=...] through the running stack's contact-events; prints the answer (the file's key)
	.venv/bin/python scripts/account_op.py export "$(ACCOUNT)" $(if $(LIST),--list "$(LIST)") $(if $(CHANNEL),--channel "$(CHANNEL)")

undo:      ## undo IMPORT=imp_... [ACCOUNT=...]: deletes the contacts that import created and nobody changed since; prints the answer
	.venv/bin/python scripts/account_op.py undo "$(IMPORT)" $(if $(ACCOUNT),--account "$(ACCOUNT)")

erase:     ## erase ACCOUNT=... PHONE=... (a number, or a BSUID-only contact's user id) [CHANNEL=whatsapp]: right to erasure (deletes the contact, leaves a tombstone); prints the answer
	.venv/bin/python scripts/account_op.py erase "$(ACCOUNT)" "$(PHONE)" $(if $(CHANNEL),--channel "$(CHANNEL)")

.PHONY: fuzz
fuzz:      ## fuzz parse -> map -> validate and phone normalisation, 60 s per target (FUZZ_SECONDS=300 make fuzz); needs `cargo install cargo-fuzz --locked`
	scripts/fuzz.sh

bench: up  ## one table: parse speed, CPU and requests per row, memory, latency vs a naive importer
	cargo build --release -p integration-tests --bin bench_parse
	.venv/bin/python scripts/bench.py

cold-start: up  ## binary sizes and cold-start init time of both functions (host release build, local Runtime API)
	cargo build --release -p import-contacts -p contact-events
	.venv/bin/python scripts/cold_start.py

bench-webhooks: up  ## signed WhatsApp webhooks through the function URL (release, restarted): ack latency, items/s, CPU and capacity per item; table also in .run/bench-webhooks.md
	.venv/bin/python scripts/bench_webhooks.py

bench-memory: up  ## peak RSS of the import function for a 100 MB CSV (and a tenth of it) and a 50 MB XLSX
	.venv/bin/python scripts/bench_memory.py
