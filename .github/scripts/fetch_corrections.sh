#!/usr/bin/env bash
# The corrections a person accepted in review (FEEDBACK_DIR/accepted/ on the cluster), copied out for the
# rebuild's training into DEST/accepted/, where azureml/run_pipeline.py takes them (FEEDBACK_DIR=DEST):
#   aks    from the Azure Files share behind the pods' claim, with the workflow's OIDC login (az) and the least
#          role that reads a share with it: "Storage File Data Privileged Reader" on the storage account
#          (FEEDBACK_STORAGE_ACCOUNT, FEEDBACK_SHARE: docs/deployment.md says where to find them);
#   local  from a running pod, with kubectl on the self-hosted runner (Docker Desktop).
# Only accepted/: records waiting for review or rejected never leave the cluster. None found is no error (a
# first deployment, or nothing reviewed yet). Prints "records=N" for $GITHUB_OUTPUT.
#
#   .github/scripts/fetch_corrections.sh aks|local DEST
set -euo pipefail
overlay="${1:?usage: fetch_corrections.sh aks|local DEST}"
dest="${2:?usage: fetch_corrections.sh aks|local DEST}"
mkdir -p "$dest/accepted"
case "$overlay" in
  aks)
    : "${FEEDBACK_STORAGE_ACCOUNT:?set the variable FEEDBACK_STORAGE_ACCOUNT: the storage account of the corrections share (docs/deployment.md)}"
    : "${FEEDBACK_SHARE:?set the variable FEEDBACK_SHARE: the Azure Files share of the corrections claim (docs/deployment.md)}"
    az storage file download-batch --auth-mode login --enable-file-backup-request-intent --no-progress \
      --account-name "$FEEDBACK_STORAGE_ACCOUNT" --source "$FEEDBACK_SHARE" --pattern 'accepted/*.png' \
      --destination "$dest" >/dev/null
    ;;
  local)
    pod="$(kubectl get pod -l app.kubernetes.io/name=digit-recognizer --field-selector=status.phase=Running \
      -o jsonpath='{.items[0].metadata.name}')"
    if [ -z "$pod" ]; then
      echo "no running pod of digit-recognizer: no corrections to take" >&2
    elif kubectl exec "$pod" -- test -d /feedback/accepted; then
      kubectl cp "$pod:/feedback/accepted" "$dest/accepted"
    else
      echo "$pod has no /feedback/accepted: nothing reviewed yet" >&2
    fi
    ;;
  *)
    echo "no overlay $overlay: aks or local" >&2
    exit 2
    ;;
esac
echo "records=$(find "$dest/accepted" -maxdepth 1 -name '*.png' | wc -l)"
