#!/usr/bin/env bash
# `make up` / `make down`: the exchange on this Docker host with compose (project "siapnet").
# up: engine, images (air-gapped base unless BASE_IMAGE says otherwise), a PostgreSQL password in
# deploy/.env (made once, mode 0600), then `compose up`; it prints where the gateway answers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -p siapnet -f "$here/compose.yaml" --env-file "$here/.env" "$@"
  else
    if ! command -v docker-compose >/dev/null 2>&1; then
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
    fi
    docker-compose -p siapnet -f "$here/compose.yaml" --env-file "$here/.env" "$@"
  fi
}

case "${1:-}" in
  up)
    bash "$here/docker-engine.sh"
    base=${BASE_IMAGE:-siapnet-base:bookworm}
    if [ "$base" = "siapnet-base:bookworm" ]; then
      bash "$here/airgap/build-base.sh"
    fi
    BASE_IMAGE=$base bash "$here/build-image.sh"
    if [ ! -f "$here/.env" ]; then
      (umask 077 && printf 'POSTGRES_PASSWORD=%s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" \
        > "$here/.env")
    fi
    compose up -d
    port=${SIAPNET_PORT:-8443}
    for _ in $(seq 1 60); do
      if docker cp siapnet_gateway_1:/var/lib/siapnet/tls/ca.pem "$here/.ca.pem" 2>/dev/null \
        || docker cp siapnet-gateway-1:/var/lib/siapnet/tls/ca.pem "$here/.ca.pem" 2>/dev/null; then
        if curl -fsS --cacert "$here/.ca.pem" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
          echo "SIAPNET is up: https://127.0.0.1:$port (trust deploy/.ca.pem)"
          echo "  create the first admin: $0 admin <password>"
          exit 0
        fi
      fi
      sleep 2
    done
    echo "the gateway did not become ready; see: $0 logs" >&2
    exit 1
    ;;
  admin)
    # The first administrator, straight into the gateway's database (later ones via the API).
    compose exec -T gateway python -m services.gateway create-admin "${2:?give a password}"
    ;;
  down) compose down ;;
  logs) compose logs --tail=100 ;;
  *) echo "usage: $0 up|down|admin <password>|logs" >&2; exit 2 ;;
esac
