#!/bin/sh
# Start the service SERVICE names (it applies its migrations first); `migrate` only migrates.
set -eu
case "${SERVICE:-}" in
  gateway|intake|recommendation) ;;
  *) echo "set SERVICE to gateway, intake or recommendation" >&2; exit 2 ;;
esac
exec python -m "services.$SERVICE" "$@"
