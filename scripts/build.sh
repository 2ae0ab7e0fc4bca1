#!/usr/bin/env bash
# Builds dist/: src/ transformed to JavaScript by TypeScript (tsconfig.build.json: emit only, types
# are checked by `make typecheck`), plus the non-TypeScript files src/ reads at run time (.proto).
# The image runs dist/ (bin/sluice picks it where there is no src/); a checkout runs src/ directly.
# Usage: scripts/build.sh [OUT] [TSCONFIG] — OUT defaults to dist, TSCONFIG to tsconfig.build.json
# (tsconfig.bench.json: src/ and bench/lib/ under OUT/src and OUT/bench, for the benchmarks). TSC
# names the compiler's tsc.js (default: this checkout's node_modules). Idempotent: OUT is replaced.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/dist}"
config="${2:-$root/tsconfig.build.json}"
tsc="${TSC:-$root/node_modules/typescript/bin/tsc}"
node="${SLUICE_NODE:-$("$root/scripts/node.sh")}"
[[ -f "$tsc" ]] || { echo "build: $tsc not found (run \`make deps\`, or set TSC)" >&2; exit 1; }
rm -rf "$out.tmp"
"$node" "$tsc" -p "$config" --outDir "$out.tmp"
# src/ was emitted under OUT/src when the config's rootDir is the checkout (then src/version.js
# reads OUT/package.json), else at OUT itself.
assets="$out.tmp"
if [[ -d "$out.tmp/src" ]]; then
  assets="$out.tmp/src"
  cp "$root/package.json" "$out.tmp/"
  # What the emitted modules find by paths relative to themselves (bin/sluice, tools/versions.env,
  # crds/): the checkout's own.
  for d in bin crds tools; do ln -s "$root/$d" "$out.tmp/$d"; done
fi
(cd "$root/src" && find . -type f ! -name '*.ts' -print0 | while IFS= read -r -d '' f; do
  mkdir -p "$assets/$(dirname "$f")"
  cp "$f" "$assets/$f"
done)
rm -rf "$out"
mv "$out.tmp" "$out"
