#!/usr/bin/env bash
# The suite's two entry points on a fresh machine (see README.md):
#   ./run.sh report   set up, run the conformance suite over every installed implementation, write the HTML report
#   ./run.sh test     set up and run the tests (what CI runs), in 2 pytest-xdist workers unless the arguments
#                     choose (see parallel_args)
#   ./run.sh gpu ...  the GPU command (gpu/command.py): `./run.sh gpu --prepare` fetches the wheels a GPU machine
#                     lacks; `./run.sh gpu OUTDIR [--dry]` runs it here. On the GPU machine, which cannot set up
#                     a venv, run `python3 -m gpu OUTDIR` (README.md, "On a GPU machine").
# Extra arguments go to pytest (to the gpu command for gpu). VENV picks the virtual environment (default .venv).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

setup() {
    local stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
    if [ ! -f "$stamp" ]; then
        echo "== setting up $VENV with $PYTHON (torch first: the local CPU wheel)"
        [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q "torch==2.13.0"
        "$VENV/bin/pip" install -q ".[torch,tf,gpu,st,dev]"
        touch "$stamp"
    fi
    if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing Debian's chromium for the report's browser check"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "!! chromium could not be installed; the browser test will say so"
    fi
}

# `./run.sh test`'s parallelism: -n 2 --dist loadgroup (tests sharing a module's fixture stay in one worker), unless
# the user's arguments (or PYTEST_ADDOPTS) choose for themselves: -n/--numprocesses/--dist/-p no:xdist, or ask for
# what a worker cannot give (--pdb, --trace, -s / --capture=no: a debugger or prints on this terminal), or only
# list or explain (--collect-only, --help, --version). TEST_WORKERS=N (or auto) changes the 2.
parallel_args() {
    local previous="" arg
    for arg in "$@" ${PYTEST_ADDOPTS:-}; do
        case "$arg" in
            -n|-n*|--numprocesses|--numprocesses=*|--dist|--dist=*|-pno:xdist|--pdb|--trace|-s|--capture=no \
                |--co|--collect-only|-h|--help|--version|-V|--fixtures|--markers)
                return ;;
            no:xdist)
                [ "$previous" = "-p" ] && return ;;
            no)
                [ "$previous" = "--capture" ] && return ;;
        esac
        previous="$arg"
    done
    if ! "$VENV/bin/python" -c "import xdist" 2>/dev/null; then
        echo "== pytest-xdist is not installed in $VENV: running the tests in one process" >&2
        return
    fi
    echo "-n ${TEST_WORKERS:-2} --dist loadgroup"
}

cmd="${1:-}"
shift || true
case "$cmd" in
    test)
        setup
        # shellcheck disable=SC2046  # the options are words without spaces
        exec "$VENV/bin/python" -m pytest $(parallel_args "$@") "$@"
        ;;
    report)
        setup
        exec "$VENV/bin/python" -m reports.main "$@"
        ;;
    gpu)
        setup
        exec "$VENV/bin/python" -m gpu "$@"
        ;;
    setup)
        setup
        ;;
    *)
        echo "usage: ./run.sh report|test|setup [pytest args] | ./run.sh gpu OUTDIR [--dry] | ./run.sh gpu --prepare" >&2
        exit 2
        ;;
esac
