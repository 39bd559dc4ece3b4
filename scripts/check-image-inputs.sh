#!/usr/bin/env bash
# Fails before `docker build` when a source the Dockerfile COPYs from the build context is
# missing (a DVC output not pulled, say), naming it, instead of an opaque build error.
set -euo pipefail
dockerfile="${1:-Dockerfile}"
missing=0
# COPY lines without --from=: every word after the options but the last is a source.
while read -r -a words; do
  srcs=()
  for w in "${words[@]:1}"; do
    case "$w" in --from=*) srcs=(); continue 2 ;; --*) continue ;; esac
    srcs+=("$w")
  done
  unset 'srcs[${#srcs[@]}-1]'
  for s in "${srcs[@]}"; do
    if [ ! -e "$s" ]; then
      echo "::error title=Image inputs::$dockerfile copies $s, which does not exist here"
      missing=1
    fi
  done
done < <(grep -iE '^[[:space:]]*COPY[[:space:]]' "$dockerfile")
[ "$missing" -eq 0 ] && echo "every COPY source of $dockerfile exists"
exit "$missing"
