#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback for the cluster tests: etcd and
# kube-apiserver, built by build.sh.
#
#   tests/cluster/up.sh DIR
#
# Generates a CA, the apiserver's serving certificate and the service-account keys, and a
# token file with two identities: `admin` (system:masters) and `controller`, which is bound
# only to the shipped ClusterRole (examples/deploy/clusterrole.yaml). Waits for /readyz, then
# writes DIR/admin.kubeconfig and DIR/controller.kubeconfig and puts kubectl in DIR/bin. Every
# request of `controller` is written to DIR/audit.log (JSON lines, metadata only).
#
# Run again on the same DIR, it reuses the certificates and ports and starts whatever is not
# running (so a test can kill the apiserver and bring it back). Logs: DIR/etcd.log,
# DIR/kube-apiserver.log. Stop with down.sh DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:?usage: up.sh DIR}
mkdir -p "$dir/bin"
dir=$(cd "$dir" && pwd)

bin=$(bash "$here/build.sh" | tail -n 1)
for tool in etcd kube-apiserver kubectl; do
  test -x "$bin/$tool" || { echo "up.sh: $bin/$tool is missing" >&2; exit 1; }
done
ln -sf "$bin/kubectl" "$dir/bin/kubectl"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
if [[ ! -f $dir/ports ]]; then
  echo "etcd_client=$(free_port) etcd_peer=$(free_port) apiserver=$(free_port)" > "$dir/ports"
fi
# shellcheck disable=SC2046
eval $(cat "$dir/ports")

# --- certificates, keys, identities ----------------------------------------------------------
pki=$dir/pki
if [[ ! -f $pki/done ]]; then
  rm -rf "$pki" && mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ingress-router-test-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile san.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    admin=$(openssl rand -hex 16)
    controller=$(openssl rand -hex 16)
    printf '%s,admin,admin,system:masters\n%s,controller,controller\n' "$admin" "$controller" > tokens.csv
    # Every request of the controller identity is audited: the tests compare what the code
    # calls with what the shipped ClusterRole grants.
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  users: [controller]\n- level: None\n' > audit-policy.yaml
    echo "$admin" > admin.token
    echo "$controller" > controller.token
    touch done
  )
fi

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- etcd --------------------------------------------------------------------------------------
if ! running "$dir/etcd.pid"; then
  setsid "$bin/etcd" --name default --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "default=http://127.0.0.1:$etcd_peer" \
    --log-level warn >> "$dir/etcd.log" 2>&1 < /dev/null &
  echo $! > "$dir/etcd.pid"
fi

# --- kube-apiserver ----------------------------------------------------------------------------
if ! running "$dir/kube-apiserver.pid"; then
  setsid "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiserver" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --token-auth-file "$pki/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --enable-priority-and-fairness=false \
    --audit-policy-file "$pki/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --profiling=false \
    --v 1 >> "$dir/kube-apiserver.log" 2>&1 < /dev/null &
  echo $! > "$dir/kube-apiserver.pid"
fi

server="https://127.0.0.1:$apiserver"
for _ in $(seq 1 600); do
  if curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $(cat "$pki/admin.token")" \
      "$server/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  if ! running "$dir/kube-apiserver.pid"; then
    echo "up.sh: kube-apiserver exited; see $dir/kube-apiserver.log" >&2
    tail -n 20 "$dir/kube-apiserver.log" >&2
    exit 1
  fi
  sleep 0.2
done
[[ ${ready:-} == 1 ]] || { echo "up.sh: kube-apiserver not ready after 120 s" >&2; exit 1; }

kubeconfig() { # NAME TOKEN-FILE
  cat > "$dir/$1.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    token: $(cat "$2")
contexts:
- name: $1
  context: {cluster: test, user: $1, namespace: default}
current-context: $1
KUBECONFIG
}
kubeconfig admin "$pki/admin.token"
kubeconfig controller "$pki/controller.token"

# The controller identity gets the shipped ClusterRole, and nothing else.
kubectl=("$dir/bin/kubectl" --kubeconfig "$dir/admin.kubeconfig")
"${kubectl[@]}" apply -f "$root/examples/deploy/clusterrole.yaml" >/dev/null
"${kubectl[@]}" create clusterrolebinding ingress-router-test-controller \
  --clusterrole ingress-router --user controller --dry-run=client -o yaml \
  | "${kubectl[@]}" apply -f - >/dev/null
echo "cluster up: $server (kubeconfigs in $dir)"
