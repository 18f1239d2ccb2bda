#!/usr/bin/env bash
# Build the SIAPNET image: wheels first, on this host (for the base image's Python), then
# `docker build` with no network. BASE_IMAGE defaults to python:3.12-slim; an air-gapped site
# (and CI) uses siapnet-base:bookworm from deploy/airgap/build-base.sh. IMAGE names the result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${BASE_IMAGE:-python:3.12-slim}
image=${IMAGE:-siapnet:latest}
python=${PYTHON:-$root/.venv/bin/python}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

version=$(docker run --rm --entrypoint python3 "$base" -c \
  'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
here=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
mkdir -p "$context/wheels"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$context/wheels" "$root"
if [ "$version" = "$here" ]; then
  "$python" -m pip wheel --quiet --wheel-dir "$context/wheels" "$root[postgres]"
else
  requirements=$("$python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["postgres"]))
PY
)
  echo "$requirements" > "$context/requirements.txt"
  "$python" -m pip download --quiet --only-binary=:all: --python-version "$version" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    --dest "$context/wheels" -r "$context/requirements.txt"
fi
cp "$root/deploy/entrypoint.sh" "$root/deploy/healthcheck.py" "$context/"
docker build --network host --quiet --build-arg "BASE_IMAGE=$base" -t "$image" \
  -f "$root/deploy/Dockerfile" "$context" >/dev/null
echo "built $image from $base (Python $version)"
