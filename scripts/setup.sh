#!/bin/sh
# Install the Debian packages lra-bench builds against. Idempotent: installs only what is missing.
set -eu
PKGS="build-essential pkg-config libcurl4-openssl-dev libcjson-dev zlib1g-dev libarchive-dev libpng-dev check dataset-fashion-mnist libopenblas-openmp-dev libdnnl-dev
      openmpi-bin libopenmpi-dev
      clang libclang-rt-dev libomp-dev"  # the last three: the libFuzzer harnesses (make fuzz)
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
