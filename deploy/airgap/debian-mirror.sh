#!/usr/bin/env bash
# Print the Debian mirror this host's apt already uses (DEBIAN_MIRROR overrides), so builds reach
# only the package source the site has configured.
set -euo pipefail
if [ -n "${DEBIAN_MIRROR:-}" ]; then
  echo "$DEBIAN_MIRROR"
  exit 0
fi
mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '/^deb / && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
if [ -z "$mirror" ]; then
  echo "no Debian mirror found in this host's apt sources; set DEBIAN_MIRROR" >&2
  exit 1
fi
echo "$mirror"
