#!/usr/bin/env bash
# The system packages the test suite needs, checked (and installed where we can) before any test
# runs, so a missing one is one clear line instead of errors deep inside the suite.
#
#   scripts/prereqs.sh          install what is missing when root with apt-get, else report it
#   scripts/prereqs.sh --check  only report (never installs)
#   scripts/prereqs.sh --table  print the table below: package, program, extra directories
#
# Used by `make test` (and so by .ci/run). Exit 0 when everything is present, 1 otherwise, with
# one line on stderr naming what is missing and the command that installs it.
set -euo pipefail

# Debian package -> the program that shows it is installed. PostgreSQL's server programs live in
# /usr/lib/postgresql/<version>/bin, off PATH; the PostgreSQL store's tests look there.
PACKAGES=(chromium postgresql curl)
declare -A PROGRAM=([chromium]=chromium [postgresql]=initdb [curl]=curl)
declare -A EXTRA_DIRS=([postgresql]="/usr/lib/postgresql/*/bin")

present() {
    local package=$1 program=${PROGRAM[$1]} dir
    command -v "$program" >/dev/null 2>&1 && return 0
    for dir in ${EXTRA_DIRS[$package]:-}; do
        [[ -x $dir/$program ]] && return 0
    done
    return 1
}

missing_packages() {
    local package missing=()
    for package in "${PACKAGES[@]}"; do
        present "$package" || missing+=("$package")
    done
    echo "${missing[@]}"
}

if [[ ${1:-} == --table ]]; then
    for package in "${PACKAGES[@]}"; do
        echo "$package ${PROGRAM[$package]} ${EXTRA_DIRS[$package]:-}"
    done
    exit 0
fi

missing=$(missing_packages)
[[ -z $missing ]] && exit 0

if [[ ${1:-} != --check && $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "prereqs: installing $missing (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq $missing >/dev/null
    missing=$(missing_packages)
    [[ -z $missing ]] && exit 0
fi

sudo=""
[[ $EUID -eq 0 ]] || sudo="sudo "
echo "prereqs: missing ${missing// /, } (needed by make test); install with: ${sudo}apt-get install -y $missing" >&2
exit 1
