#!/usr/bin/env bash
# `make bench-upstream` builds upstream Argo Events here, for the side-by-side benchmark
# (bench/upstream.ts). Idempotent: the binary is cached as
#   ~/.cache/sluice/tools/argo-events-<ARGO_EVENTS_VERSION>/argo-events
# and built only when missing. Upstream's code is built as published, never patched.
#
# `go install github.com/argoproj/argo-events/cmd@<version>` is not used: it reads the module's
# version list (for deprecation notices), which the module proxy available here refuses. Instead
# the module at the pinned version is downloaded (`go mod download`, which needs only that
# version), copied out of the read-only module cache and built in place like upstream's release:
# `CGO_ENABLED=0 go build ./cmd` with the version stamped by -ldflags (upstream's Makefile
# target dist/argo-events-linux-amd64), plus -trimpath. Needs Go >= the go line of upstream's
# go.mod (1.26.0 for v1.9.11). A first build takes ~10 minutes on 2 cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG=upstream
# shellcheck source=lib/cache.sh
source "$root/scripts/lib/cache.sh"

V="${ARGO_EVENTS_VERSION:?tools/versions.env must set ARGO_EVENTS_VERSION}"
MODULE=github.com/argoproj/argo-events

argo_build() {
  command -v go >/dev/null 2>&1 || die "Go is required to build Argo Events $V; install Go 1.26+ and re-run"
  local work
  work="$(mktemp -d "$TOOLS/.argo-src.XXXXXX")"
  # Download outside any module (GOFLAGS=-mod=mod so a GOFLAGS=-mod=vendor from outside cannot interfere).
  local json dir
  json="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$MODULE@$V")" || {
    rm -rf "$work"
    die "go mod download $MODULE@$V failed: $json"
  }
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  [[ -n "$dir" && -f "$dir/go.mod" ]] || { rm -rf "$work"; die "go mod download gave no module folder: $json"; }
  say "argo-events: module $MODULE@$V in $dir; building ./cmd"
  # The module cache is read-only: build in a writable copy (go build may write go.sum entries).
  cp -r "$dir" "$work/src"
  chmod -R u+w "$work/src"
  local ld="-X $MODULE.version=$V -X $MODULE.gitTag=$V -X $MODULE.gitTreeState=clean"
  if ! (cd "$work/src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$OUT/argo-events" ./cmd); then
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work"
}

build_into "$TOOLS/argo-events-$V" argo-events -- argo_build
