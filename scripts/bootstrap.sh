#!/usr/bin/env bash
# Installs everything Assetvault needs on a fresh Debian machine: system packages,
# the Python virtual environment and the npm packages of the end-to-end tests.
# Idempotent: each step is skipped when what it makes is already there and current.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libvips42 libvips-dev libvips-tools   # renditions (pyvips builds against libvips-dev)
  libimage-exiftool-perl                # metadata extraction
  ffmpeg                                # video poster frames
  libmagic1                             # content type sniffing
  nginx-light wrk curl                  # benchmarks (reference PUT server, load generator)
  postgresql postgresql-contrib         # scale-out database (tests start a cluster if none runs)
  ceph-mon ceph-osd radosgw ceph-common # a real S3 server for the tests (scripts/ceph-rgw.sh)
  chromium                              # the web UI's browser tests (driven by playwright-core)
)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
# Node.js brings npm with it in both Debian's and NodeSource's packaging; only add Debian's
# when no node is present, so an existing NodeSource install is never fought with.
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi

if [ -f tests/e2e/package.json ]; then
  nstamp=tests/e2e/node_modules/.installed-$(sha1sum tests/e2e/package.json | cut -c1-12)
  if [ ! -f "$nstamp" ]; then
    (cd tests/e2e && npm install --no-audit --no-fund --loglevel=error)
    rm -f tests/e2e/node_modules/.installed-* && touch "$nstamp"
  fi
fi

# The web UI's libraries: installed from npm, their browser builds copied into the
# package's static files (src/assetvault/api/ui/static/vendor), so the server ships them.
ustamp=ui/node_modules/.installed-$(cat ui/package.json scripts/bootstrap.sh | sha1sum | cut -c1-12)
vendor=src/assetvault/api/ui/static/vendor
if [ ! -f "$ustamp" ] || [ ! -d "$vendor" ]; then
  (cd ui && npm install --no-audit --no-fund --loglevel=error)
  rm -rf "$vendor.tmp" && mkdir -p "$vendor.tmp"
  cp ui/node_modules/preact/dist/preact.mjs ui/node_modules/preact/hooks/dist/hooks.mjs \
     ui/node_modules/htm/dist/htm.mjs "$vendor.tmp/"
  for f in swagger-ui-bundle.js swagger-ui.css; do
    cp "ui/node_modules/swagger-ui-dist/$f" "$vendor.tmp/"
  done
  rm -rf "$vendor" && mv "$vendor.tmp" "$vendor"
  rm -f ui/node_modules/.installed-* && touch "$ustamp"
fi

# The browser tests' driver (its own package.json: the AEM clients' is tests/e2e's).
if [ -f tests/e2e/browser/package.json ]; then
  bstamp=tests/e2e/browser/node_modules/.installed-$(sha1sum tests/e2e/browser/package.json | cut -c1-12)
  if [ ! -f "$bstamp" ]; then
    (cd tests/e2e/browser && npm install --no-audit --no-fund --loglevel=error)
    rm -f tests/e2e/browser/node_modules/.installed-* && touch "$bstamp"
  fi
fi
