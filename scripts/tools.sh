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
#   servers       Kafka's jars (Maven Central, tools/kafka/pom.xml), moto (PyPI, in a venv) and
#                 nsqd/nsqlookupd (tools/nsq) for the broker/cloud source and trigger tests;
#                 `tools.sh servers` builds only these
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG=tools
# shellcheck source=lib/cache.sh
source "$root/scripts/lib/cache.sh"

command -v go >/dev/null 2>&1 || die "Go is required to build nats-server, helm, kube-apiserver and etcd; install Go 1.24+ and re-run"

go_install() { GOBIN="$OUT" GOFLAGS="${GOFLAGS:-} -trimpath" go install "$@"; }

# --- nats-server -------------------------------------------------------------------------------
build_into "$TOOLS/nats-server-$NATS_SERVER_VERSION" nats-server -- \
  go_install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
# `tools.sh nats`: only what `make run` needs.
# An older nats-server (before atomic batch publish), for the tests of a bus sluice does not run
# itself (jetstreamExotic, `sluice dev --nats-url`): test/integration/sensors/old-server.test.ts.
build_into "$TOOLS/nats-server-$OLD_NATS_SERVER_VERSION" nats-server -- \
  go_install "github.com/nats-io/nats-server/v2@$OLD_NATS_SERVER_VERSION"

if [[ "${1:-}" == "nats" ]]; then say "nats-server ready under $TOOLS"; exit 0; fi

# --- servers for the broker/cloud EventSource and trigger tests ----------------------------------
# Each is started by its test harness only for its own tests (test/harness/*.ts) and stopped after.
# `tools.sh servers` builds only these.
servers() {
  # nsqd + nsqlookupd: built from tools/nsq (its go.mod repeats nsq's own replace directive, which
  # `go install pkg@version` refuses).
  build_into "$TOOLS/nsq-$NSQ_VERSION" nsqd nsqlookupd -- \
    bash -c 'cd "$1/tools/nsq" && go build -trimpath -ldflags "-s -w" -o "$OUT/nsqd" github.com/nsqio/nsq/apps/nsqd &&
      go build -trimpath -ldflags "-s -w" -o "$OUT/nsqlookupd" github.com/nsqio/nsq/apps/nsqlookupd' _ "$root"

  # Apache Kafka: the broker's jars from Maven Central (tools/kafka/pom.xml), run with the JDK.
  if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
    build_into "$TOOLS/kafka-$KAFKA_VERSION" kafka-classpath -- kafka_fetch
  else
    say "kafka: java and mvn are needed (Debian: default-jdk-headless maven); Kafka tests will be skipped"
  fi

  # moto (AWS API server for SQS, SNS, S3, Lambda) in a venv. A venv cannot be moved once made,
  # so it is made in place and marked complete last.
  local moto="$TOOLS/moto-$MOTO_VERSION"
  if [[ -f "$moto/.complete" ]]; then
    say "moto: cached in $moto"
  elif command -v python3 >/dev/null 2>&1; then
    local start=$SECONDS
    rm -rf "$moto"
    python3 -m venv "$moto" || die "python3 -m venv failed (Debian: python3-venv)"
    "$moto/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" || { rm -rf "$moto"; die "pip install moto failed"; }
    touch "$moto/.complete"
    say "moto: installed in $((SECONDS - start))s -> $moto"
  else
    say "moto: python3 is needed; SQS/SNS tests will be skipped"
  fi
}

kafka_fetch() {
  mvn -q -B -f "$root/tools/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$OUT/libs" || return 1
  # One line the harness reads: the class path of the broker.
  printf '#!/bin/sh\necho "%s/libs/*"\n' "$TOOLS/kafka-$KAFKA_VERSION" > "$OUT/kafka-classpath"
  chmod +x "$OUT/kafka-classpath"
}

if [[ "${1:-}" == "servers" ]]; then servers; say "servers ready under $TOOLS"; exit 0; fi

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

servers

say "all tools ready under $TOOLS"
