#!/usr/bin/env bash
# The whole test suite: vet, the static build, a fuzz smoke run, then every
# test (go test's summary closes the output).
set -euo pipefail
cd "$(dirname "$0")/.."
go vet ./...
# staticcheck (pinned): unused code, deprecated APIs, common mistakes. Zero findings.
go run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...
# The release build is static.
CGO_ENABLED=0 go build -o /dev/null ./cmd/imgtool
# Fuzz smoke: every Fuzz* target briefly (its seeds plus a few seconds of
# mutation). Long runs: scripts/fuzz.sh 10m 4.
bash scripts/fuzz.sh 10s 2
go test -count=1 -timeout 45m ./...
