# Sourced by the scripts in scripts/: the project's .venv and the pinned uv in it.
#
#   novacache_venv [DIR]   creates DIR (default .venv) with the interpreter $PYTHON
#                          (default python3) if it is missing, installs uv from
#                          requirements/bootstrap.txt (exact version, hash-checked), and
#                          sets VPY (its python) and UV (its uv, bound to that python).
#
# Everything else the scripts install comes through "$UV" from the lock files in
# requirements/ (see scripts/lock), so a fresh machine gets the versions CI had.

novacache_venv() {
    local dir=${1:-.venv}
    local py=${PYTHON:-python3}
    if [ ! -x "$dir/bin/python" ]; then
        "$py" -m venv "$dir"
    fi
    VPY="$dir/bin/python"
    if [ ! -x "$dir/bin/uv" ] || ! cmp -s requirements/bootstrap.txt "$dir/.bootstrap.txt"; then
        "$VPY" -m pip --version >/dev/null 2>&1 || "$VPY" -m ensurepip -q
        # pip only installs uv, from a hash-checked file: the pip version that the
        # machine's venv module ships does not change what gets installed.
        "$VPY" -m pip install -q --disable-pip-version-check --no-deps \
            --require-hashes --only-binary :all: -r requirements/bootstrap.txt
        cp requirements/bootstrap.txt "$dir/.bootstrap.txt"
    fi
    UV="$dir/bin/uv"
    export UV_PYTHON="$VPY"
}
