#!/usr/bin/env bash
# Installs the Debian packages aistack needs to build, test and benchmark, if any
# are missing. Safe to run again: it does nothing when all are present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
      libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libyaml-dev libsqlite3-dev
      libopenblas-dev libpng-dev libcmocka-dev
      curl openssl wrk nginx-light prometheus
      python3 python3-numpy python3-torch python3-jinja2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js may come from elsewhere (nodesource bundles npm): only ask Debian when absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
