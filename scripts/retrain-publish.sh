#!/usr/bin/env bash
# The retrain's git and pull-request flow (retrain.yml): commit params.yaml + dvc.lock on the
# ONE rolling branch retrain/next, rebased on the base branch, force-pushed (with lease), and
# ONE pull request for it, created once and edited in place afterwards.
#   CODE=0  the gate passed: the PR is set to auto-merge (squash) once its checks pass;
#   CODE=10 gated: auto-merge is turned off, the PR waits for a reviewer.
# No `[skip ci]`: the model changed, and its checks, image build and report must run.
# The PR body is report/pr-body.md with every local image/link replaced by a link to the run's
# artifact (ARTIFACT_URL): `gh` uploads nothing, and private plots get no public URL.
# A rejected push (the branch or main moved meanwhile) fetches, rebases once and retries;
# a second rejection fails with a message saying what to do.
set -euo pipefail
: "${CODE:?}" "${DAY:?}"
branch="${BRANCH:-retrain/next}"
base="${BASE:-main}"
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
fail() {
  echo "::error title=retrain publish::$1"
  echo "**retrain publish failed**: $1" >> "$summary"
  exit 1
}

git config user.name "${GIT_BOT_NAME:-github-actions[bot]}"
git config user.email "${GIT_BOT_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}"
git checkout -q -B "$branch"
git add params.yaml dvc.lock
if git diff --cached --quiet; then
  echo "Nothing changed in params.yaml or dvc.lock: no commit." | tee -a "$summary"
  exit 0
fi
if [ "$CODE" = "0" ]; then verdict="passed the gate"; else verdict="gated: needs review"; fi
git commit -q -m "retrain: data up to $DAY" -m "Retrain $verdict (stages.retrain exit $CODE); see the PR and the run's report artifact."

rebase_on_base() {
  git fetch -q origin "+refs/heads/$base:refs/remotes/origin/$base"
  git fetch -q origin "+refs/heads/$branch:refs/remotes/origin/$branch" 2>/dev/null || true
  if ! git rebase -q "origin/$base"; then
    git rebase --abort || true
    fail "$base moved and conflicts with this retrain's params.yaml/dvc.lock; re-run the retrain workflow on the new $base"
  fi
}
push() {
  git push -q --force-with-lease="$branch" origin "HEAD:refs/heads/$branch"
}
rebase_on_base
if ! push; then
  echo "::warning::push of $branch rejected; fetching, rebasing on $base once and retrying"
  rebase_on_base
  push || fail "push of $branch rejected twice (someone else pushes to it?); re-run the retrain workflow"
fi

body=report/pr-body-links.md
python -m stages.compare.assets report/pr-body.md --url "${ARTIFACT_URL:-}" --out "$body"
title="Retrain on data up to $DAY"
[ "$CODE" = "0" ] || title="$title (gated: needs review)"
if number=$(gh pr view "$branch" --json number --jq .number 2>/dev/null) && [ -n "$number" ]; then
  gh pr edit "$number" --title "$title" --body-file "$body"
  echo "Updated pull request #$number ($branch)." >> "$summary"
else
  gh pr create --base "$base" --head "$branch" --title "$title" --body-file "$body"
  number=$(gh pr view "$branch" --json number --jq .number)
  echo "Opened pull request #$number ($branch)." >> "$summary"
fi
if [ "$CODE" = "0" ]; then
  gh pr merge "$number" --auto --squash ||
    echo "::warning::auto-merge could not be enabled (allow it in the repository settings); merge #$number by hand"
else
  gh pr merge "$number" --disable-auto 2>/dev/null || true
fi
