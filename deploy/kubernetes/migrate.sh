#!/usr/bin/env bash
# One release's migrations on Kubernetes (docs/deploy/kubernetes.md, "Each release"):
#
#   deploy/kubernetes/migrate.sh deploy/kubernetes/overlays/production/migrations [TIMEOUT_SECONDS]
#
# 1. deletes the previous release's Job (a Job's pod template cannot change, so it is replaced);
# 2. applies the migrations' kustomization (the Job, its ServiceAccount and NetworkPolicies);
# 3. waits until the Job completes or fails. `kubectl wait --for=condition=complete` alone waits out
#    its whole timeout when the Job fails, and kubectl 1.30 cannot wait for either of two
#    conditions: this reads the Job's conditions every few seconds instead (Complete and Failed are
#    its final ones on Kubernetes 1.30 and later).
#
# Exit status: 0 migrated; 1 the Job failed (its last log lines are printed: each attempt gives up
# on a lock it cannot take soon, and the Job tries again up to its backoffLimit before failing);
# 2 not finished within TIMEOUT_SECONDS (default 960, past the Job's activeDeadlineSeconds of 900);
# 3 wrong usage; 4 the delete or the apply failed (kubectl said why: a REPLACE_ME left in the
# network settings, say), so nothing was waited for. Needs bash and kubectl 1.30 or newer, with the
# context of the cluster.
set -euo pipefail

overlay=${1:-}
timeout_s=${2:-960}
poll_s=${PAGOS_MIGRATE_POLL_SECONDS:-5}
if [[ -z $overlay || ! -f $overlay/kustomization.yaml || ! $timeout_s =~ ^[0-9]+$ ]]; then
    echo "usage: $0 OVERLAY_DIR [TIMEOUT_SECONDS]   (OVERLAY_DIR holds a kustomization.yaml)" >&2
    exit 3
fi
namespace=$(sed -n 's/^namespace: *//p' "$overlay/kustomization.yaml")
if [[ -z $namespace ]]; then
    echo "$0: $overlay/kustomization.yaml sets no namespace" >&2
    exit 3
fi
job=job/pagos-worker-migrate

if ! kubectl -n "$namespace" delete "$job" --ignore-not-found --wait=true || ! kubectl apply -k "$overlay"; then
    echo "$0: could not replace $job (kubectl's error above); nothing to wait for" >&2
    exit 4
fi
echo "waiting for $job in namespace $namespace (up to ${timeout_s} s)"

deadline=$((SECONDS + timeout_s))
while :; do
    condiciones=$(kubectl -n "$namespace" get "$job" \
        -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
    case " $condiciones " in
        *" Complete "*)
            echo "$job: complete"
            exit 0
            ;;
        *" Failed "*)
            echo "$job: failed; its last lines:" >&2
            kubectl -n "$namespace" logs "$job" --tail=20 >&2 || true
            exit 1
            ;;
    esac
    if ((SECONDS >= deadline)); then
        echo "$job: neither complete nor failed after ${timeout_s} s; see kubectl -n $namespace describe $job" >&2
        exit 2
    fi
    sleep "$poll_s"
done
