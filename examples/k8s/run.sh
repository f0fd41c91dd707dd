#!/usr/bin/env bash
# Runs the sharded evaluation, waits for every index, then runs the merge Job.
#   examples/k8s/run.sh            (kubectl pointed at your cluster; the image pushed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kubectl apply -f "$here/eval-shards.yaml"
kubectl wait --for=condition=complete --timeout=24h job/diffuse-eval-shards
kubectl apply -f "$here/merge-job.yaml"
kubectl wait --for=condition=complete --timeout=1h job/diffuse-eval-merge
kubectl logs job/diffuse-eval-merge
