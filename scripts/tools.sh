#!/usr/bin/env bash
# `make tools`: builds or installs the external programs the tests run for real, into a cache
# outside the work tree keyed by version, so later runs reuse them. Idempotent.
#
#   nats-server   go install github.com/nats-io/nats-server/v2
#   kube-apiserver, etcd, kubectl   go build from tools/k8s (k8s.io/kubernetes pinned, staging
#                 modules replaced by the published k8s.io/* versions); skipped when
#                 KUBEBUILDER_ASSETS points at a folder that already has them
#   helm          go install helm.sh/helm/v3/cmd/helm
#   prometheus    Debian package, with promtool (installed when missing and we are root)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../tools/versions.env
source "$root/tools/versions.env"
CACHE="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
TOOLS="$CACHE/tools"
mkdir -p "$TOOLS"

say() { printf '\033[1m[tools]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[tools] error:\033[0m %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is required to build nats-server, helm, kube-apiserver and etcd; install Go 1.24+ and re-run"

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

go_install() { GOBIN="$OUT" GOFLAGS="${GOFLAGS:-} -trimpath" go install "$@"; }

# --- nats-server -------------------------------------------------------------------------------
build_into "$TOOLS/nats-server-$NATS_SERVER_VERSION" nats-server -- \
  go_install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
# `tools.sh nats`: only what `make run` needs.
if [[ "${1:-}" == "nats" ]]; then say "nats-server ready under $TOOLS"; exit 0; fi

# --- kube-apiserver + etcd + kubectl -----------------------------------------------------------
k8s_build() {
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  ( cd "$root/tools/k8s" &&
    go build -trimpath -ldflags "$ld" -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver &&
    go build -trimpath -ldflags "$ld" -o "$OUT/kubectl" k8s.io/kubernetes/cmd/kubectl &&
    go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" ./etcd )
}
if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
  say "kube-apiserver, etcd: using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
else
  [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && say "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver/etcd; building our own"
  build_into "$TOOLS/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION" kube-apiserver etcd kubectl -- k8s_build
fi

# --- the node: kubelet, kube-controller-manager, kube-scheduler, kube-proxy ---------------------
# Same module and version as the API server; a folder of its own so the control-plane build above
# stays valid. Used by the e2e tests that run pods on a real kubelet (test/harness/node.ts).
k8s_node_build() {
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  local cmd
  for cmd in kubelet kube-controller-manager kube-scheduler kube-proxy; do
    ( cd "$root/tools/k8s" && go build -trimpath -ldflags "$ld" -o "$OUT/$cmd" "k8s.io/kubernetes/cmd/$cmd" ) || return 1
  done
}
build_into "$TOOLS/k8s-node-$KUBERNETES_VERSION" kubelet kube-controller-manager kube-scheduler kube-proxy -- k8s_node_build

# --- cluster DNS: CoreDNS with the plugins a cluster needs (tools/coredns) ------------------------
build_into "$TOOLS/coredns-$COREDNS_VERSION" coredns -- \
  bash -c 'cd "$1/tools/coredns" && go build -trimpath -ldflags "-s -w" -o "$OUT/coredns" .' _ "$root"

# --- pause: the pod sandbox process (tools/pause), for the node's sandbox image -------------------
build_into "$TOOLS/pause-$PAUSE_VERSION" pause -- \
  bash -c 'cd "$1/tools/pause" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/pause" .' _ "$root"

# --- helm --------------------------------------------------------------------------------------
build_into "$TOOLS/helm-$HELM_VERSION" helm -- go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

# --- prometheus (Debian) -----------------------------------------------------------------------
# promtool (same package) checks and unit-tests the alerting rules.
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  say "prometheus: $(command -v prometheus), $(command -v promtool)"
elif [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  say "prometheus: installing the Debian package"
  apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || die "apt-get install prometheus failed"
  say "prometheus: $(command -v prometheus)"
else
  say "prometheus: missing (install the 'prometheus' package); tests that scrape metrics or run promtool will be skipped"
fi

say "all tools ready under $TOOLS"
