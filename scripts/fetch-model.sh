#!/usr/bin/env bash
# Puts the model the committed dvc.lock names at models/model.skops before an image build
# (the Dockerfile copies it; it is a git-ignored DVC output, absent from a fresh checkout).
#
# With a remote (DVC_REMOTE_URL set, or .dvc/config without the placeholder) and credentials:
#   `dvc pull train` -- only the train stage's output, read-only credentials are enough.
# Without (a pull request from a fork gets no secrets): `dvc repro train` on the bundled
#   sample, and a notice in the job summary saying the image carries a model built in the job.
# Either way the file's md5 must be the one dvc.lock names, or the build would ship a model
# that does not match the lock it carries.
set -euo pipefail
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
lock_md5() {
  python - <<'PY'
import yaml
lock = yaml.safe_load(open("dvc.lock"))
outs = lock["stages"]["train"]["outs"]
print(next(o["md5"] for o in outs if o["path"] == "models/model.skops"))
PY
}

if [ -n "${DVC_REMOTE_URL:-}" ]; then
  dvc remote modify --local storage url "$DVC_REMOTE_URL"
fi
if [ -n "${DVC_REMOTE_URL:-}" ] || ! grep -q CHANGE-ME .dvc/config; then
  python -m stages.remote_check
  dvc pull train
  source="pulled from the DVC remote (dvc pull train)"
else
  echo "::notice title=Image model::no DVC remote secret (a fork PR?): building the model with dvc repro train on the sample"
  {
    echo "### Image model"
    echo
    echo "No DVC remote secret is available (pull requests from forks get none), so the"
    echo "image is built with a model reproduced in this job (\`dvc repro train\` on the bundled"
    echo "sample) instead of the one pulled from the remote."
  } >> "$summary"
  dvc repro train
  source="reproduced in the job (dvc repro train)"
fi
want=$(lock_md5)
have=$(md5sum models/model.skops | cut -d' ' -f1)
if [ "$want" != "$have" ]; then
  echo "::error title=Image model::models/model.skops md5 $have is not the $want dvc.lock names ($source)"
  exit 1
fi
echo "models/model.skops: md5 $have as in dvc.lock, $source"
echo "models/model.skops: md5 \`$have\` as in dvc.lock, $source." >> "$summary"
