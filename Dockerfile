# The Continuum image: the `continuum` command (operator, trainer, model server, monitor) in a
# virtual environment at /opt/venv, run as the non-root user 10001.
#
# Nothing is downloaded while building: pip installs from a wheelhouse in the build context,
# filled on the host by hack/wheelhouse.sh (PyPI only):
#   build/wheels/requirements.lock          exact pins of the runtime dependencies
#   build/wheels/deps/*.whl                 their wheels (CPython 3.11, x86_64 Linux)
#   build/wheels/continuum-<version>-*.whl  the project itself
#
# Offline (this is what hack/image.sh does; hack/base-image.sh provides python:3.11-slim from a
# Debian rootfs when no registry is reachable):
#   hack/wheelhouse.sh && docker build --network none -t continuum:0.1.0 .
# With internet, the same two commands work (docker pulls the official python:3.11-slim). To let
# pip fetch what the wheelhouse lacks from PyPI instead, add --build-arg PIP_OFFLINE=0 (and drop
# --network none).
#
# Works on the official python image (python in /usr/local/bin) and on a Debian bookworm rootfs
# (python3 in /usr/bin): both have `python3 -m venv`.
ARG BASE_IMAGE=python:3.11-slim

# --- dependencies: a layer of their own, rebuilt only when the lock file or the wheels change ---
FROM ${BASE_IMAGE} AS deps
ARG PIP_OFFLINE=1
# The dependencies' own test suites (tests/ folders) are never imported at run time; they are
# dropped, which saves about a hundred megabytes.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
COPY build/wheels/requirements.lock /wheels/requirements.lock
COPY build/wheels/deps/ /wheels/deps/
RUN set -eu; \
    if [ "$PIP_OFFLINE" = 1 ]; then index=--no-index; else index=; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install $index --find-links /wheels/deps -r /wheels/requirements.lock; \
    find /opt/venv/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} +

# --- the image ---
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG PIP_OFFLINE=1
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN groupadd --system --gid 10001 continuum \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/continuum --create-home \
      --shell /usr/sbin/nologin continuum
COPY --from=deps /opt/venv /opt/venv
# The project is small and changes often: its own layer, on top of the cached dependencies.
COPY build/wheels/continuum-*.whl /tmp/wheels/
RUN set -eu; \
    set -- /tmp/wheels/continuum-*.whl; \
    if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then \
      echo "build/wheels must hold exactly one continuum-*.whl; run hack/wheelhouse.sh" >&2; exit 1; \
    fi; \
    if [ "$PIP_OFFLINE" = 1 ]; then index=--no-index; else index=; fi; \
    pip install $index --no-deps "$1"; \
    pip check; \
    rm -rf /tmp/wheels; \
    continuum version

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="continuum" \
      org.opencontainers.image.description="A Kubernetes operator for continuous training of scikit-learn models" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

USER 10001:10001
WORKDIR /home/continuum
ENTRYPOINT ["continuum"]
CMD ["--help"]
