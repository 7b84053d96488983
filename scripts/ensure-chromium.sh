#!/usr/bin/env bash
# The browser test needs Debian's headless Chromium. Install it when we can (root, apt);
# otherwise say so: the test then skips locally, and fails in CI (CI=true).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the browser test..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || { echo "could not install chromium" >&2; exit 1; }
else
  echo "chromium is not installed; the browser test will be skipped (apt-get install chromium)" >&2
  exit 1
fi
