#!/usr/bin/env bash
# Builds the real Kubernetes binaries that the cluster tests run against, from their Go modules:
# kube-apiserver and kubectl from k8s.io/kubernetes (its cmd/ packages, every staging module
# k8s.io/... pinned by a replace line to the matching v0.x.y), and etcd from
# go.etcd.io/etcd/server/v3 (etcdmain).
#
# Idempotent: the binaries are cached under target/cluster/bin and rebuilt only when a version
# below changes. Prints the directory that holds them.
#
#   KUBERNETES_VERSION  default below; inside k8s-openapi's supported range (the crate's
#                       Kubernetes version feature in Cargo.toml names the same minor)
#   ETCD_VERSION        default below
set -euo pipefail
cd "$(dirname "$0")/../.."

KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.35.4}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
STAGING_VERSION=0.${KUBERNETES_VERSION#1.}

root=$PWD/target/cluster
bin=$root/bin
stamp=$bin/.versions
want="kubernetes=$KUBERNETES_VERSION etcd=$ETCD_VERSION stamped"

# One build at a time: tests that start clusters in parallel all call this script.
mkdir -p "$root"
exec 9> "$root/.build.lock"
flock 9

if [[ -x $bin/kube-apiserver && -x $bin/kubectl && -x $bin/etcd && -f $stamp \
      && $(cat "$stamp") == "$want" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: go is not installed" >&2; exit 1; }
export GOFLAGS=-mod=mod
export CGO_ENABLED=0
mkdir -p "$bin"

# --- kube-apiserver and kubectl ------------------------------------------------------------
k8s=$root/src/kubernetes
rm -rf "$k8s" && mkdir -p "$k8s"
(
  cd "$k8s"
  cat > go.mod <<GOMOD
module ingress-router.test/kubernetes

go 1.24
GOMOD
  # The staging modules are the ones k8s.io/kubernetes itself replaces with ./staging/src/...;
  # read its go.mod so that the list is exact for the version.
  go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" > download.json
  upstream=$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' download.json)
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$upstream" | sort -u)
  test -n "$staging" || { echo "build.sh: no staging modules found in $upstream" >&2; exit 1; }
  {
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    for module in $staging; do
      echo "replace $module => $module v$STAGING_VERSION"
    done
  } >> go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy -e >/dev/null 2>&1 || true
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$KUBERNETES_VERSION"
  # The version a release build stamps, so that both report it (and kubectl sees no skew).
  minor=${KUBERNETES_VERSION#1.}
  minor=${minor%%.*}
  stamp_flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp_flags+=" -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stamp_flags+=" -X $pkg.gitTreeState=clean"
  done
  go build -trimpath -ldflags "-s -w$stamp_flags" -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  go build -trimpath -ldflags "-s -w$stamp_flags" -o "$bin/kubectl" k8s.io/kubernetes/cmd/kubectl
)

# --- etcd ----------------------------------------------------------------------------------
etcd=$root/src/etcd
rm -rf "$etcd" && mkdir -p "$etcd"
(
  cd "$etcd"
  cat > go.mod <<GOMOD
module ingress-router.test/etcd

go 1.24
GOMOD
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .
)

"$bin/kube-apiserver" --version >&2
"$bin/kubectl" version --client >&2
"$bin/etcd" --version >&2
echo "$want" > "$stamp"
echo "$bin"
