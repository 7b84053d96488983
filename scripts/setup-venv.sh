# Sourced by ./start and ./test: create .venv and install mpsandbox (editable) when needed.
# Re-installs only when pyproject.toml changed since the last install.
# The extras come in a variable, not "$1": a sourced script sees its caller's arguments.
extras="${SETUP_EXTRAS:-}"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "mpsandbox needs Python 3.11 or newer (found: $("$py" --version 2>&1))" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # A first setup cut short (Ctrl-C while the venv was made) leaves one without pip.
  .venv/bin/python -m pip --version >/dev/null 2>&1 || "$py" -m venv --clear .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ -n "$extras" ]; then
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
  else
    .venv/bin/python -m pip install --quiet -e .
  fi
  touch "$stamp"
fi
# Bytecode for the package, written now: an editable install compiles nothing, and where
# PYTHONDONTWRITEBYTECODE is set (containers, CI) Python would compile every module again on
# every start (a seventh of a second of `mpsandbox serve`'s start-up). Only stale files are
# compiled again; a file that does not compile is reported when it is imported.
.venv/bin/python -m compileall -q src/mpsandbox >/dev/null 2>&1 || true
