#!/usr/bin/env bash
# Lists which secrets the workflows need are missing (via `gh secret list`) and how to set each.
# Exit 0 if all required ones are present, 1 otherwise. Values are never read or printed.
set -euo pipefail

command -v gh >/dev/null || { echo "error: gh (GitHub CLI) not found; install it and run 'gh auth login'" >&2; exit 2; }
gh auth status >/dev/null 2>&1 || { echo "error: gh is not logged in; run 'gh auth login'" >&2; exit 2; }

repo_secrets=$(gh secret list --json name --jq '.[].name' "$@")
has() { grep -qx "$1" <<<"$repo_secrets"; }

missing=0
need() {  # name, why
  if has "$1"; then
    printf '  ok       %-22s %s\n' "$1" "$2"
  else
    printf '  MISSING  %-22s %s\n           set it: gh secret set %s\n' "$1" "$2" "$1"
    missing=1
  fi
}
optional() {
  if has "$1"; then printf '  ok       %-22s %s\n' "$1" "$2"
  else printf '  -        %-22s %s (optional: gh secret set %s)\n' "$1" "$2" "$1"; fi
}

echo "Required:"
need TMDB_API_TOKEN "TMDB API read access token (retrain)"
if has AWS_ROLE_ARN; then
  need AWS_ROLE_ARN "IAM role assumed with OIDC (pr-report, retrain)"
else
  echo "  (no AWS_ROLE_ARN: falling back to access keys)"
  need AWS_ACCESS_KEY_ID "S3 remote access key (pr-report, retrain)"
  need AWS_SECRET_ACCESS_KEY "S3 remote secret key (pr-report, retrain)"
fi
echo "Optional:"
optional AWS_REGION "region of the bucket (default us-east-1)"
optional DVC_REMOTE_URL "s3://bucket/prefix if .dvc/config keeps the placeholder"
optional AWS_READ_ROLE_ARN "read-only role for the image jobs' dvc pull train"
optional DVC_PR_REMOTE_URL "where PR jobs push (default <DVC_REMOTE_URL>-pr)"
optional CML_PUBLISH_ASSETS "true: cml uploads report images (public URLs)"
optional RETRAIN_APP_ID "GitHub App for retrain pushes/PRs that trigger checks"
optional RETRAIN_TOKEN "PAT alternative to the App (else GITHUB_TOKEN, no checks)"
optional SLACK_WEBHOOK_URL "deploy notifications"
optional SONAR_TOKEN "SonarCloud analysis"
for env in dev prod; do
  if gh secret list --env "$env" --json name --jq '.[].name' "$@" 2>/dev/null | grep -qx KUBE_CONFIG; then
    printf '  ok       %-22s environment %s\n' KUBE_CONFIG "$env"
  else
    printf '  -        %-22s environment %s (gh secret set KUBE_CONFIG --env %s < kubeconfig.b64)\n' KUBE_CONFIG "$env" "$env"
  fi
done
exit "$missing"
