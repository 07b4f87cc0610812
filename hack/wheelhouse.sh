#!/usr/bin/env bash
# Fill build/wheels with binary wheels for the image: the runtime dependencies listed in
# pyproject.toml ([project].dependencies, read on every run) for CPython 3.11 on x86_64 Linux,
# plus the project's own wheel. The Dockerfile installs from there with `pip install --no-index`.
#
#   build/wheels/requirements.lock           exact pins of every dependency (resolved by uv)
#   build/wheels/deps/*.whl                  their wheels
#   build/wheels/continuum-<version>-*.whl   the project (uv build --wheel, like pip wheel --no-deps .)
#
#   hack/wheelhouse.sh
#
# Environment:
#   WHEELS_DIR   output folder                                     (default <repo>/build/wheels)
#   PYTHON       host Python 3.11+ with pip, used to run pip       (default python3)
#   FORCE=1      download the dependencies again even when cached
#
# Dependencies are resolved to exact pins with uv (installed from PyPI into the cache), the pins
# are written to build/wheels/requirements.lock, and the wheels are fetched with pip download.
# Downloads are cached in $CACHE_DIR/wheels/<hash>, the hash covering the dependency list and the
# target platform, so a rerun with an unchanged pyproject does not touch PyPI for dependencies.
# Changing the dependencies in pyproject.toml gives a new hash and a fresh resolve.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WHEELS_DIR="${WHEELS_DIR:-$REPO_DIR/build/wheels}"
PYTHON="${PYTHON:-python3}"
TARGET_PYTHON=3.11
PLATFORMS=(manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_28_x86_64 any)
WHEEL_CACHE="$CACHE_DIR/wheels"
# The resolver (see lock_dependencies); its platform matches the newest of PLATFORMS.
UV_VERSION=0.13.8
UV_PLATFORM=x86_64-manylinux_2_28

check_python() {
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found; set PYTHON=/path/to/python3.11+"
  "$PYTHON" -c 'import sys, tomllib; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$PYTHON is older than 3.11 (tomllib is needed); set PYTHON=/path/to/python3.11+"
  "$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip; run '$PYTHON -m ensurepip'"
}

# One requirement per line, exactly as pyproject.toml lists them.
read_dependencies() {
  "$PYTHON" - "$REPO_DIR/pyproject.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
for dep in project.get("dependencies", []):
    print(dep)
EOF
}

read_version() {
  "$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$REPO_DIR/pyproject.toml"
}

# uv resolves in seconds where pip's resolver backtracks for many minutes (boto3 has hundreds of
# releases, each downloaded in full for its metadata). It runs from its own venv in the cache.
ensure_uv() {
  local venv="$CACHE_DIR/tools/uv-$UV_VERSION"
  if [ ! -x "$venv/bin/uv" ]; then
    log "installing uv $UV_VERSION into $venv (PyPI)"
    rm -rf "$venv"
    if ! { "$PYTHON" -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"; } >&2; then
      rm -rf "$venv"; return 1
    fi
  fi
  echo "$venv/bin/uv"
}

# Exact pins for every package the image needs, resolved for the image's platform, on stdout.
lock_dependencies() {
  local reqs="$1" uv
  uv="$(ensure_uv)" || die "could not install uv $UV_VERSION from PyPI; check PyPI access (pip install uv==$UV_VERSION)"
  UV_CACHE_DIR="$CACHE_DIR/tools/uv-cache" "$uv" pip compile --no-header --no-annotate \
    --python-version "$TARGET_PYTHON" --python-platform "$UV_PLATFORM" --only-binary :all: "$reqs" \
    || die "the dependencies in pyproject.toml cannot be resolved to wheels for python $TARGET_PYTHON (uv output above)"
}

# Resolve and download the dependency wheels for the image's platform into $1 (once per hash).
download_dependencies() {
  local dest="$1" reqs="$2" args=() p
  for p in "${PLATFORMS[@]}"; do args+=(--platform "$p"); done
  rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
  if [ -s "$reqs" ]; then
    step "Resolving $(grep -c . "$reqs") dependencies (python $TARGET_PYTHON, $UV_PLATFORM)"
    lock_dependencies "$reqs" >"$dest.tmp/requirements.lock"
    step "Downloading $(grep -c . "$dest.tmp/requirements.lock") pinned wheels"
    with_heartbeat "pip download" "$PYTHON" -m pip download --disable-pip-version-check --no-deps \
      --only-binary=:all: --python-version "$TARGET_PYTHON" --implementation cp "${args[@]}" \
      -r "$dest.tmp/requirements.lock" -d "$dest.tmp"
  fi
  cp "$reqs" "$dest.tmp/requirements.txt"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
  log "cached $(find "$dest" -name '*.whl' | wc -l) wheels ($(du -sh "$dest" | cut -f1)) in $dest"
}

# Replace the wheelhouse contents: the lock file beside the project wheel, the dependency wheels in
# deps/ (a layer of their own in the Dockerfile, cached while the dependencies stay the same).
# Hard links to the cache where possible (same file system).
sync_wheelhouse() {
  local src="$1"
  rm -rf "$WHEELS_DIR/deps"
  mkdir -p "$WHEELS_DIR/deps"
  find "$WHEELS_DIR" -maxdepth 1 \( -name '*.whl' -o -name 'requirements.*' \) -delete
  if [ -f "$src/requirements.lock" ]; then cp "$src/requirements.lock" "$WHEELS_DIR/"; else : >"$WHEELS_DIR/requirements.lock"; fi
  find "$src" -maxdepth 1 -name '*.whl' -exec sh -c 'cp -l "$@" "$0" 2>/dev/null || cp "$@" "$0"' \
    "$WHEELS_DIR/deps" {} +
}

# `uv build` (isolated build env from its cache) takes seconds where `pip wheel` takes ~20 s.
build_project_wheel() {
  local version="$1" tmp uv
  step "Building the continuum $version wheel"
  uv="$(ensure_uv)" || die "could not install uv $UV_VERSION from PyPI; check PyPI access (pip install uv==$UV_VERSION)"
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand $tmp now: it is local
  trap "rm -rf '$tmp'" EXIT
  # A fixed timestamp makes the wheel byte-identical while the sources are, so docker's layer cache
  # holds across reruns.
  with_heartbeat "uv build --wheel" env UV_CACHE_DIR="$CACHE_DIR/tools/uv-cache" \
    SOURCE_DATE_EPOCH="$(git -C "$REPO_DIR" log -1 --format=%ct 2>/dev/null || echo 315532800)" \
    "$uv" build --wheel --python "$PYTHON" --out-dir "$tmp" "$REPO_DIR"
  find "$WHEELS_DIR" -maxdepth 1 -name 'continuum-*.whl' -delete
  cp "$tmp"/continuum-*.whl "$WHEELS_DIR"/ || die "the build produced no continuum-*.whl"
  rm -rf "$tmp"; trap - EXIT
  # setuptools leaves a build/ tree beside the sources; it is not ours to keep.
  rm -rf "$REPO_DIR/build/lib" "$REPO_DIR/build/bdist."*
}

main() {
  check_python
  local reqs key dest version
  reqs="$(mktemp)"
  read_dependencies >"$reqs"
  [ -s "$reqs" ] || log "pyproject.toml lists no runtime dependencies"
  key="$( { cat "$reqs"; echo "py=$TARGET_PYTHON $UV_PLATFORM"; printf '%s\n' "${PLATFORMS[@]}"; } \
          | sha256sum | cut -c1-16)"
  dest="$WHEEL_CACHE/$key"
  mkdir -p "$WHEEL_CACHE"
  if [ -f "$dest/requirements.txt" ] && [ "${FORCE:-0}" != 1 ]; then
    log "dependency wheels cached in $dest (pyproject dependencies unchanged)"
  else
    download_dependencies "$dest" "$reqs"
  fi
  rm -f "$reqs"
  sync_wheelhouse "$dest"
  version="$(read_version)"
  build_project_wheel "$version"
  log "wheelhouse $WHEELS_DIR: $(find "$WHEELS_DIR/deps" -name '*.whl' | wc -l) dependency wheels in deps/" \
      "plus $(basename "$(find "$WHEELS_DIR" -maxdepth 1 -name 'continuum-*.whl')"), $(du -sh "$WHEELS_DIR" | cut -f1)"
}

main "$@"
