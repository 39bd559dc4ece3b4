#!/usr/bin/env bash
# Interactive set-up of the CI/CD secrets. Checks the tools and the gh login, sets each secret
# whose value it is given (from the environment, or typed at a hidden prompt; never from the
# command line), then prints the branch protection and environments to create by hand.
set -euo pipefail

for tool in git gh dvc; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found; install it first" >&2; exit 2; }
done
gh auth status >/dev/null 2>&1 || { echo "error: gh is not logged in; run 'gh auth login'" >&2; exit 2; }
repo=$(gh repo view --json nameWithOwner --jq .nameWithOwner)
echo "Repository: $repo"

set_secret() {  # name, prompt
  local name=$1 prompt=$2 value=${!1:-}
  if [ -z "$value" ] && [ -t 0 ]; then
    read -r -s -p "$prompt (empty to skip): " value; echo
  fi
  if [ -n "$value" ]; then
    printf '%s' "$value" | gh secret set "$name" --repo "$repo"
    echo "  set $name"
  else
    echo "  skipped $name"
  fi
}

echo "Secrets (values are sent to GitHub only, never printed):"
set_secret TMDB_API_TOKEN "TMDB API read access token"
set_secret AWS_ROLE_ARN "IAM role ARN for OIDC (preferred; empty to use access keys)"
if ! gh secret list --repo "$repo" --json name --jq '.[].name' | grep -qx AWS_ROLE_ARN; then
  set_secret AWS_ACCESS_KEY_ID "AWS access key id"
  set_secret AWS_SECRET_ACCESS_KEY "AWS secret access key"
fi
set_secret AWS_REGION "AWS region of the bucket"
set_secret DVC_REMOTE_URL "DVC remote URL s3://bucket/prefix"
set_secret SLACK_WEBHOOK_URL "Slack webhook URL (optional)"
set_secret SONAR_TOKEN "SonarCloud token (optional)"

cat <<EOT

Now make these settings on GitHub (Settings of $repo):
  Environments:
    - prod: required reviewers (the release owners); deployment tags: model#prod#* (GTO);
            secret KUBE_CONFIG (base64 kubeconfig): gh secret set KUBE_CONFIG --env prod
    - dev:  deployment tags: model#dev#*; secret KUBE_CONFIG: gh secret set KUBE_CONFIG --env dev
  Branch protection for main:
    - require pull requests with 1 approval; require status checks: ci / lint, ci / test (3.11,
      3.12, 3.13), ci / security, pr-report / report; allow auto-merge (retrain/next PRs)
  Retrain token (checks must run on the retrain PR):
    - a GitHub App (contents + pull requests: write): gh secret set RETRAIN_APP_ID,
      gh secret set RETRAIN_APP_PRIVATE_KEY; or a fine-grained PAT: gh secret set RETRAIN_TOKEN
  Image jobs: read-only S3 role: gh secret set AWS_READ_ROLE_ARN (docs/ci-cd.md)
  Actions > General:
    - Workflow permissions: read by default
Then check with: scripts/verify-secrets.sh
EOT
