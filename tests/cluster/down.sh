#!/usr/bin/env bash
# Stops what `up.sh DIR` started: kube-apiserver, then etcd. Leaves DIR's files.
set -euo pipefail
dir=${1:?usage: down.sh DIR}
for name in kube-apiserver etcd; do
  pidfile=$dir/$name.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
