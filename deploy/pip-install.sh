#!/bin/sh
# The Dockerfile's pip step, shared by its two virtualenvs: creates /opt/venv and installs the
# requirements given as pip arguments, constrained by requirements.lock, through the build's
# index hooks (the PIP_INDEX_URL build argument, the pip_conf and pip_cert build secrets: see
# the Dockerfile's header), then checks every installed distribution against the lock.
set -eu
if [ -z "${PIP_INDEX_URL:-}" ]; then unset PIP_INDEX_URL; fi
if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi
if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi
python -m venv /opt/venv
/opt/venv/bin/pip install -c requirements.lock "$@"
/opt/venv/bin/python check-pins.py requirements.lock
