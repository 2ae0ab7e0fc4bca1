# Shared by scripts/tools.sh and scripts/upstream.sh: the tool cache (~/.cache/sluice/tools, one
# folder per <name>-<version>) and build_into, which fills one folder atomically.
# Source it after setting `root` (the repository) and `TAG` (the log prefix, e.g. tools).

# shellcheck source=../../tools/versions.env
source "$root/tools/versions.env"
CACHE="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
TOOLS="$CACHE/tools"
mkdir -p "$TOOLS"

say() { printf '\033[1m[%s]\033[0m %s\n' "$TAG" "$*"; }
die() { printf '\033[31m[%s] error:\033[0m %s\n' "$TAG" "$*" >&2; exit 1; }

# build_into DIR NAME... -- COMMAND: runs COMMAND with $OUT set to a fresh temp folder, then moves
# the result to DIR only when every NAME was produced, so an interrupted build is never reused.
build_into() {
  local dir="$1"; shift
  local names=()
  while [[ "$1" != "--" ]]; do names+=("$1"); shift; done
  shift
  local have=1
  for n in "${names[@]}"; do [[ -x "$dir/$n" ]] || have=0; done
  if [[ $have -eq 1 ]]; then
    say "${names[*]}: cached in $dir"
    return 0
  fi
  local tmp
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  local start=$SECONDS
  say "${names[*]}: building (first time only; this takes a few minutes on 2 cores)"
  if ! OUT="$tmp" "$@"; then
    rm -rf "$tmp"
    die "building ${names[*]} failed (see the Go output above)"
  fi
  for n in "${names[@]}"; do [[ -x "$tmp/$n" ]] || { rm -rf "$tmp"; die "build finished but $n is missing"; }; done
  rm -rf "$dir"
  mv "$tmp" "$dir"
  say "${names[*]}: built in $((SECONDS - start))s -> $dir"
}
