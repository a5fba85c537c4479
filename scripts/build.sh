#!/usr/bin/env bash
# Build imgtool so that --version names the commit it was built from, in a
# clone or a git worktree: scripts/build.sh [-o FILE] [go build flags...]
#
# `go build` stamps vcs.revision, vcs.time and vcs.modified itself (read back
# by debug.ReadBuildInfo; `go version -m FILE | grep vcs` shows them), but
# not when GOFLAGS holds -buildvcs=false (`go env GOFLAGS`; a go env file
# can set it), and never in a git worktree: cmd/go recognises a repository
# by a .git directory, and a worktree's .git is a file. So this script
# passes the same facts to main.version with -ldflags -X.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=$(git rev-parse HEAD)
at=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD)
dirty=""
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	dirty="+dirty"
fi
out=(-o imgtool)
if [ "${1:-}" = "-o" ]; then
	out=(-o "$2")
	shift 2
fi
exec go build "${out[@]}" -ldflags "-X 'main.version=(devel) ${rev:0:12}${dirty} ${at}'" "$@" ./cmd/imgtool
