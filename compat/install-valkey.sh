#!/usr/bin/env bash
# Installs valkey-server and valkey-cli from Debian's packages (bookworm has them in its
# backports), for the Valkey rows of compat/run.mjs. Idempotent: does nothing when both
# binaries are there. Needs root (CI's container runs as root).
set -euo pipefail

if command -v valkey-server >/dev/null && command -v valkey-cli >/dev/null; then
  exit 0
fi
codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show valkey-server >/dev/null 2>&1 && [ -n "$codename" ]; then
  list=/etc/apt/sources.list.d/backports.list
  grep -qs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/* ||
    echo "deb http://deb.debian.org/debian ${codename}-backports main" >"$list"
  apt-get update -qq
fi
target=()
apt-cache policy valkey-server | grep -q "${codename}-backports" && target=(-t "${codename}-backports")
apt-get install -y -qq --no-install-recommends "${target[@]}" valkey-server valkey-tools >/dev/null
# The package starts a service where an init system runs; the rows start their own servers.
command -v systemctl >/dev/null && systemctl disable --now valkey-server >/dev/null 2>&1 || true
valkey-server --version
