#!/usr/bin/env bash
# Runs shellcheck over every shell script under hack/ and .ci/: each file whose first line is a
# shell's shebang (whatever its name) and each *.sh, which covers the sourced ones (no shebang).
# `make lint` runs it; shellcheck is installed from Debian when missing, as CI starts on a fresh
# machine.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SHEBANG='^#!.*[/ ](ba|da|k)?sh([[:space:]]|$)'

# The scripts to check, relative to the repository, one a line.
shell_scripts() {
  local file first
  while IFS= read -r -d '' file; do
    first=""
    IFS= read -r first <"$file" || true
    if [[ $file == *.sh || $first =~ $SHEBANG ]]; then printf '%s\n' "$file"; fi
  done < <(find hack .ci -type f -print0 | sort -z)
}

ensure_shellcheck() {
  command -v shellcheck >/dev/null && return 0
  [ "$(id -u)" = 0 ] \
    || die "shellcheck is not installed; install it (apt-get install -y shellcheck), or run make lint as root to have it installed"
  ensure_debian_packages shellcheck
}

cd "$REPO_DIR"
ensure_shellcheck
mapfile -t scripts < <(shell_scripts)
shellcheck --external-sources --source-path=SCRIPTDIR "${scripts[@]}"
