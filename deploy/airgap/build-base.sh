#!/usr/bin/env bash
# Build, with no container registry, the two images SIAPNET needs:
#   siapnet-base:bookworm      Debian bookworm (debootstrap minbase) with Python 3.11
#   siapnet-postgres:15        that base with Debian's postgresql-15
# Both are reused when present (FORCE=1 rebuilds). Needs root, debootstrap and a Docker engine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${BASE_TAG:-siapnet-base:bookworm}
postgres=${POSTGRES_TAG:-siapnet-postgres:15}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "${FORCE:-0}" = 1 ] || ! docker image inspect "$base" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || {
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  mirror=$("$here/debian-mirror.sh")
  rootfs=$(mktemp -d)
  trap 'as_root rm -rf "$rootfs"' EXIT
  echo "airgap: debootstrap bookworm from the host's mirror"
  as_root debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$rootfs" "$mirror" \
    >/tmp/siapnet-debootstrap.log 2>&1 || { tail -20 /tmp/siapnet-debootstrap.log; exit 1; }
  # The image's apt uses the same mirror, for images built on top of it.
  echo "deb $mirror bookworm main" | as_root tee "$rootfs/etc/apt/sources.list" >/dev/null
  as_root rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
  as_root tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  echo "airgap: built $base"
fi

if [ "${FORCE:-0}" = 1 ] || ! docker image inspect "$postgres" >/dev/null 2>&1; then
  docker build --network host -q -t "$postgres" --build-arg "BASE_IMAGE=$base" \
    -f "$here/postgres.Dockerfile" "$here" >/dev/null
  echo "airgap: built $postgres"
fi
