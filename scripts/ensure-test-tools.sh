#!/usr/bin/env bash
# Installs the command-line tools the tests drive (real clients), from Debian's packages, when missing.
set -euo pipefail
need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v sslscan >/dev/null 2>&1 || need+=(sslscan)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the tests need: ${need[*]} (Debian packages); install them with apt-get as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
