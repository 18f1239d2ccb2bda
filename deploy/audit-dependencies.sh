#!/usr/bin/env bash
# Audit the project's resolved dependencies — the venv's `pip freeze`, the project itself left out
# — for known vulnerabilities; exit 1 on any that is not accepted below.
#
# Where PyPI answers per-release queries, this is `pip-audit --strict`. Where only its project
# pages are served (these machines: /pypi/NAME/VERSION/json answers 404 and osv.dev is out of
# reach), each package's page is read instead: its `vulnerabilities` are those of the newest
# release (OSV's), exact for a package at that release. A package held below its newest release
# (by a pin) cannot be checked that way: it is listed as not audited, and AUDIT_STRICT=1 makes
# that a failure too. PYTHON names the interpreter whose packages are audited.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT

# Accepted vulnerabilities (every id and alias), each with why:
# - CVE-2024-23342, ecdsa: a timing side channel in ecdsa's own signing, with no fix planned.
#   python-jose requires ecdsa but signs and verifies with its cryptography backend, which it
#   picks whenever cryptography is installed (a dependency of ours), so that code never runs.
accepted=(CVE-2024-23342 GHSA-wj6h-64fc-37mp PYSEC-2026-1325)

"$python" -m pip freeze --exclude-editable --disable-pip-version-check >"$requirements"
"$python" - "$requirements" "${accepted[@]}" <<'PY'
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from packaging.utils import canonicalize_name
from packaging.version import Version



def json_api() -> str:
    """Where the package index answers about projects: PYPI_JSON_URL, or else the JSON API of the
    index pip itself defaults to (pip names that host; this script does not)."""
    if configured := os.environ.get("PYPI_JSON_URL"):
        return configured.rstrip("/")
    from pip._internal.models.index import PyPI

    return PyPI.pypi_url


PYPI = json_api()
started = time.monotonic()
requirements, accepted = sys.argv[1], set(sys.argv[2:])
pins, unaudited = {}, []
for line in open(requirements):
    line = line.split("#")[0].strip()
    if line:
        name, pinned, version = line.partition("==")
        if pinned:
            pins[canonicalize_name(name)] = version
        else:
            unaudited.append(f"{line} (not a release from PyPI)")


def page(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def done(code: int) -> None:
    print(f"audit: took {time.monotonic() - started:.1f} s")
    sys.exit(code)


try:
    some = next(iter(sorted(pins.items())))
    per_release = page(f"{PYPI}/{some[0]}/{some[1]}/json") is not None
except urllib.error.URLError as error:
    print(f"audit: PyPI is out of reach ({error.reason}); nothing was audited")
    done(2)

if per_release:
    print(f"audit: pip-audit on {len(pins)} pinned packages")
    command = [sys.executable, "-m", "pip_audit", "--strict", "--progress-spinner", "off"]
    command += ["--no-deps", "--disable-pip", "--requirement", requirements]
    for vulnerability in sorted(accepted):
        command += ["--ignore-vuln", vulnerability]
    done(subprocess.run(command).returncode)


def audit(name: str, version: str):
    project = page(f"{PYPI}/{name}/json")
    if project is None:
        return name, version, None, "not on PyPI"
    newest = project["info"]["version"]
    if Version(newest) != Version(version):
        return name, version, None, f"newest is {newest}"
    found, seen = [], set()
    for vulnerability in project.get("vulnerabilities") or []:
        names = {vulnerability["id"], *(vulnerability.get("aliases") or [])}
        if vulnerability.get("withdrawn") or names & (accepted | seen):
            continue
        seen |= names
        found.append(vulnerability)
    return name, version, found, None


print(
    f"audit: {len(pins)} pinned packages against PyPI's vulnerability lists (this index serves"
    " no per-release data, so pip-audit cannot run here)"
)
with ThreadPoolExecutor(max_workers=8) as pool:
    results = list(pool.map(lambda pin: audit(*pin), sorted(pins.items())))
vulnerable = [(name, version, found) for name, version, found, _ in results if found]
unaudited += [f"{name} {version} ({why})" for name, version, found, why in results if why]
for name, version, found in vulnerable:
    for vulnerability in found:
        ids = ", ".join([vulnerability["id"], *(vulnerability.get("aliases") or [])])
        fixed = ", ".join(vulnerability.get("fixed_in") or []) or "no fixed release"
        about = (vulnerability.get("summary") or vulnerability.get("details") or "").strip()
        print(f"VULNERABLE {name} {version}: {ids}; fixed in: {fixed}")
        print(f"    {about.splitlines()[0][:200] if about else ''}")
for line in unaudited:
    print(f"not audited: {line}")
audited = len(pins) - len(unaudited)
print(
    f"audit: {audited} audited, {len(vulnerable)} vulnerable, {len(unaudited)} not audited,"
    f" {len(accepted)} accepted ids"
)
strict = os.environ.get("AUDIT_STRICT") == "1"
done(1 if vulnerable or (strict and unaudited) else 0)
PY
