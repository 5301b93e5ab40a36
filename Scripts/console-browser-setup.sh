#!/usr/bin/env bash
# What the console's browser tests need: Debian's chromium and chromium-driver (no browser
# download), and Selenium with axe-core in a virtual environment at .build/console-venv.
# Idempotent; `.ci/run` and ConsoleBrowserTests run it. Prints the venv's python on success.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/console-venv
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
  if [ ! -x "$tool" ]; then
    echo "console-browser-setup: $tool is missing: apt-get install chromium chromium-driver (.ci/run does)" >&2
    exit 1
  fi
done
if ! "$venv/bin/python" -c "import selenium, axe_selenium_python" >/dev/null 2>&1; then
  mkdir -p .build
  python3 -m venv "$venv" >&2 || { echo "console-browser-setup: python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "selenium==4.51.0" "axe-selenium-python==2.1.6" >&2
fi
echo "$PWD/$venv/bin/python"
