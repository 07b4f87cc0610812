#!/usr/bin/env bash
# Provide the Dockerfile's base image offline: if BASE_IMAGE (python:3.11-slim) is not in the local
# Docker engine, build a Debian bookworm rootfs with Python 3.11 by debootstrap from the Debian
# mirror apt already uses, and `docker import` it under that tag.
#
#   hack/base-image.sh
#
# Environment:
#   BASE_IMAGE     tag to provide                              (default python:3.11-slim)
#   DEBIAN_MIRROR  Debian mirror URL      (default: the bookworm mirror from apt's configuration)
#   FORCE=1        re-import even if the tag is present (the cached rootfs tarball is reused)
#
# The rootfs tarball is cached as $CACHE_DIR/base-<hash>.tar, keyed by the debootstrap arguments.
# Debian bookworm's Python is 3.11.2, matching the 3.11 the wheelhouse is built for.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,python-is-python3
# Bump when the post-debootstrap cleanup below changes, so the cache key changes with it.
ROOTFS_RECIPE=2

# The mirror apt uses for the bookworm suite, e.g. http://deb.debian.org/debian.
find_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return 0; fi
  local m
  # shellcheck disable=SC2016  # $(SITE) is apt's format syntax, not a shell expansion
  m="$(apt-get indextargets --format '$(SITE) $(RELEASE)' 2>/dev/null \
        | awk -v s="$SUITE" '$2 == s { print $1; exit }')"
  if [ -z "$m" ]; then
    m="$(grep -rhoE '^(deb|URIs:)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
          | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)"
  fi
  [ -n "$m" ] || die "no Debian mirror found in apt's configuration; run 'apt-get update' or set DEBIAN_MIRROR=http://deb.debian.org/debian"
  echo "${m%/}"
}

image_present() { docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; }

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  step "Installing debootstrap (apt)"
  # A fresh machine has no package lists yet.
  apt-get -o DPkg::Lock::Timeout=600 update >/dev/null || die "apt-get update failed; check the Debian mirror"
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends debootstrap >/dev/null \
    || die "could not install debootstrap; run 'apt-get update && apt-get install -y debootstrap'"
}

# debootstrap into a scratch folder, trim it, and write the tarball atomically.
build_rootfs() {
  local mirror="$1" tarball="$2" dir
  ensure_debootstrap
  dir="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  # shellcheck disable=SC2064  # expand $dir now: it is local
  trap "rm -rf '$dir'" EXIT
  step "debootstrap $SUITE ($PACKAGES) from $mirror (about a minute)"
  with_heartbeat "debootstrap" debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$dir" "$mirror"
  log "trimming the rootfs (apt lists and caches, docs, man pages, logs)"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
         "$dir"/var/log/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
         "$dir"/tmp/* "$dir"/var/tmp/* "$dir"/debootstrap
  # The mirror is apt's source inside the image (for anyone who adds packages with network).
  printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$dir/etc/apt/sources.list"
  log "packing $tarball"
  tar --numeric-owner --xattrs -C "$dir" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$dir"; trap - EXIT
  log "rootfs: $(du -h "$tarball" | cut -f1)"
}

# Environment an ordinary python:3.11-slim has; `docker import` starts from an empty config.
import_rootfs() {
  local tarball="$1"
  step "docker import $tarball as $BASE_IMAGE"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $SUITE $PACKAGES (hack/base-image.sh)" \
    "$tarball" "$BASE_IMAGE" >/dev/null
  docker run --rm --network none "$BASE_IMAGE" python3 -c 'import sys, venv; print("python", sys.version.split()[0])' \
    | sed 's/^/    /' >&2 || die "the imported $BASE_IMAGE cannot run python3; delete $tarball and re-run"
}

main() {
  if image_present && [ "${FORCE:-0}" != 1 ]; then
    log "$BASE_IMAGE is present in docker; nothing to do (FORCE=1 rebuilds it from the cached rootfs)"
    return 0
  fi
  require_root
  mkdir -p "$CACHE_DIR"
  local mirror key tarball
  mirror="$(find_mirror)"
  key="$(printf '%s\n' "$SUITE" "$PACKAGES" "$mirror" minbase "$ROOTFS_RECIPE" | sha256sum | cut -c1-12)"
  tarball="$CACHE_DIR/base-$key.tar"
  if [ -s "$tarball" ]; then
    log "using the cached rootfs $tarball"
  else
    build_rootfs "$mirror" "$tarball"
  fi
  import_rootfs "$tarball"
}

main "$@"
