#!/usr/bin/env bash
# Installs the Debian packages hark needs, only those missing.
#   scripts/install-deps.sh run    build + run
#   scripts/install-deps.sh test   also what the tests need (cmocka, clang for
#                                  sanitizers and libFuzzer, Chromium for the
#                                  browser test, Node.js + npm)
set -euo pipefail
mode="${1:-run}"
pkgs=(make gcc pkg-config libuv1-dev libjansson-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev)
if [[ "$mode" == "test" ]]; then
    pkgs+=(libcmocka-dev clang libclang-rt-14-dev chromium sqlite3) # chromium: pusher-js's browser build; sqlite3: a test locks the history file
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node/npm may come from outside Debian's packages; the command is what counts.
filtered=()
for p in "${missing[@]}"; do
    case "$p" in
    nodejs) command -v node >/dev/null 2>&1 || filtered+=("$p") ;;
    npm) command -v npm >/dev/null 2>&1 || filtered+=("$p") ;;
    *) filtered+=("$p") ;;
    esac
done
missing=("${filtered[@]+"${filtered[@]}"}")
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "[deps] installing: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "[deps] need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
