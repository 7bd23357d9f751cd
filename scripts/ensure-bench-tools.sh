#!/usr/bin/env bash
# Installs the programs the benchmark drives (HAProxy, nginx, wrk, h2load), from Debian's packages, when missing.
set -euo pipefail
need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
# nginx-light is the smallest build with the proxy and upstream-keepalive modules; plain nginx
# (bookworm's name for the same server) is the fallback when a release has no -light package.
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "the benchmark needs: ${need[*]} (Debian packages); install them with apt-get as root" >&2
  exit 1
fi
echo "ensure-bench-tools: installing ${need[*]}" >&2
apt-get update -qq
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
if ! install "${need[@]}"; then
  # A release without nginx-light: take nginx instead and try again.
  need=("${need[@]/nginx-light/nginx}")
  install "${need[@]}"
fi
# The Debian packages start a system nginx / haproxy service where an init system runs; the
# benchmark starts its own instances on OS-chosen ports and never uses those.
