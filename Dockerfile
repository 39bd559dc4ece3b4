# syntax=docker/dockerfile:1
# Two images from one file (BuildKit or podman/buildah: RUN --mount needs one of them):
#   serve     (the default, last stage): the prediction API; only what serving imports
#             (deploy/requirements-serve.in), the model and the dvc.lock that names it.
#   pipeline: the whole pipeline (dvc, pandas, pyarrow, matplotlib …) for the CronJob.
# Build the serve image after `make repro` or `dvc pull` (it carries models/model.skops, and the
# build fails unless its md5 is the one the carried dvc.lock records for the train stage):
#   docker build --build-arg GIT_SHA="$(git rev-parse HEAD)" -t movie-success .
#   docker build --target pipeline -t movie-success-pipeline .
# pip's network, without leaving anything in a layer (deploy/pip-install.sh reads them):
#   --build-arg PIP_INDEX_URL=https://mirror.example/simple    a mirror without credentials
#   --secret id=pip_conf,src="$HOME/.config/pip/pip.conf"     index credentials, trusted hosts
#   --secret id=pip_cert,src=/etc/ssl/certs/corp-ca.pem       a CA bundle (TLS-inspecting proxy)
# Downloaded wheels stay in a cache mount, so changing a pin re-downloads only that package.

# ---- base: Python, tini as PID 1 (forwards SIGTERM to the process group), the app user ----
FROM python:3.11.7-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# ---- build: the pipeline's virtualenv, all of pyproject's dependencies, pinned by the lock ----
FROM base AS build
ARG PIP_INDEX_URL=""
WORKDIR /build
COPY requirements.lock pyproject.toml deploy/check-pins.py deploy/pip-install.sh ./
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_conf \
    --mount=type=secret,id=pip_cert \
    python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('runtime.txt', 'w').write('\n'.join(deps) + '\n')" \
 && sh pip-install.sh -r runtime.txt

# ---- build-serve: the serving virtualenv, only the distributions the service imports ----
# (and without pip, setuptools and the packages' own test suites: about 140 MB)
FROM base AS build-serve
ARG PIP_INDEX_URL=""
WORKDIR /build
COPY requirements.lock deploy/requirements-serve.in deploy/check-pins.py deploy/pip-install.sh ./
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_conf \
    --mount=type=secret,id=pip_cert \
    sh pip-install.sh -r requirements-serve.in \
 && /opt/venv/bin/python -m pip uninstall -y -q pip setuptools \
 && find /opt/venv -depth -type d -name tests -prune -exec rm -rf {} +

# ---- pipeline: the venv, code, params, DVC files and the bundled sample (no model) ----
FROM base AS pipeline
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root pyproject.toml params.yaml dvc.yaml dvc.lock .dvcignore ./
COPY --chown=root:root .dvc/config .dvc/config
COPY --chown=root:root data/sample/ data/sample/
COPY --chown=root:root stages/ stages/
# Last, so that a new commit rebuilds only this layer, not the venv's copy.
ARG GIT_SHA=unknown
ENV GIT_SHA=$GIT_SHA
USER 10001:10001
ENTRYPOINT ["tini", "-g", "--"]
CMD ["dvc", "repro"]

# ---- serve (default): the serving venv, the code, the model checked against its dvc.lock ----
FROM base AS serve
ENV PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
COPY --from=build-serve /opt/venv /opt/venv
COPY --chown=root:root dvc.lock ./
COPY --chown=root:root stages/ stages/
COPY --chown=root:root models/model.skops models/model.skops
# The model must be the one dvc.lock records (what /version reports as model_md5).
RUN python -c "import sys; from pathlib import Path; from stages.api.settings import file_md5, model_from_lock; ref = model_from_lock(Path('dvc.lock')); got = file_md5(ref.path) if ref and ref.path.is_file() else None; ok = ref is not None and ref.path == Path('models/model.skops') and got == ref.md5; print('models/model.skops md5', got, 'matches dvc.lock') if ok else sys.exit(f'models/model.skops md5 {got} is not the train output in dvc.lock ({ref}): dvc pull or dvc repro, then rebuild')"
ARG GIT_SHA=unknown
ENV GIT_SHA=$GIT_SHA
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# tini -g: a SIGTERM while the model loads (in a child process) stops the child too.
ENTRYPOINT ["tini", "-g", "--"]
CMD ["python", "-m", "stages.serve"]
