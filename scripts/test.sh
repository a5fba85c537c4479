#!/usr/bin/env bash
# The whole test suite: vet, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
go vet ./...
# The release build is static.
CGO_ENABLED=0 go build -o /dev/null ./cmd/imgtool
go test -count=1 -timeout 45m ./...
# Fuzz smoke: every Fuzz* target briefly (seeds plus a few seconds of
# mutation). Long runs: scripts/fuzz.sh 10m 4.
bash scripts/fuzz.sh 10s 2
