# Prediction service image (also runs the pipeline for the Kubernetes CronJob).
# Build after `make repro` (the image carries models/model.skops and dvc.lock):
#   docker build --build-arg GIT_SHA="$(git rev-parse HEAD)" -t movie-success .

# ---- build: a virtualenv with the pinned runtime dependencies, before any code ----
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.lock pyproject.toml ./
# The runtime needs are pyproject's dependencies; requirements.lock pins their versions.
RUN python -m venv /opt/venv \
 && python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('runtime.txt', 'w').write('\n'.join(deps) + '\n')" \
 && /opt/venv/bin/pip install --no-cache-dir -c requirements.lock -r runtime.txt

# ---- runtime: the venv, the code, the model; non-root ----
FROM python:3.11.7-slim-bookworm
ARG GIT_SHA=unknown
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    GIT_SHA=$GIT_SHA
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root pyproject.toml params.yaml dvc.yaml dvc.lock .dvcignore ./
COPY --chown=root:root .dvc/config .dvc/config
COPY --chown=root:root data/sample/ data/sample/
COPY --chown=root:root stages/ stages/
COPY --chown=root:root models/model.skops models/model.skops
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["python", "-m", "stages.serve"]
