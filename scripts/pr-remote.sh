#!/usr/bin/env bash
# The remotes of a pull-request job: `storage` (production, the default) is read for the base's
# outputs and the run-cache; `pr` is where the PR's own outputs and run-cache are pushed, a
# separate prefix (DVC_PR_REMOTE_URL, default `<storage url>-pr`), so unreviewed code never
# writes to the production remote or its run-cache. An endpointurl (MinIO, the tests' moto
# server) is carried over from `storage`.
set -euo pipefail
if [ -n "${DVC_REMOTE_URL:-}" ]; then
  dvc remote modify --local storage url "$DVC_REMOTE_URL"
fi
storage=$(dvc remote list | awk '$1 == "storage" {print $2}')
pr_url="${DVC_PR_REMOTE_URL:-${storage%/}-pr}"
if [ "$pr_url" = "$storage" ]; then
  echo "::error::DVC_PR_REMOTE_URL is the production remote ($storage): PR jobs must not write there" >&2
  exit 1
fi
dvc remote add --local --force pr "$pr_url"
endpoint=$(dvc config remote.storage.endpointurl 2>/dev/null || true)
if [ -n "$endpoint" ]; then
  dvc remote modify --local pr endpointurl "$endpoint"
fi
echo "DVC remotes: read storage ($storage), write pr ($pr_url)"
