#!/usr/bin/env bash
# Mutation testing of sessionspec/reference/ with mutmut 3, the conformance kit as the test suite.
# On demand, not in CI. Usage (from anywhere):
#
#     bash tests/mutation/run.sh [WORKDIR]        # default WORKDIR: /tmp/sessionspec-mutation
#
# mutmut rewrites the files it mutates, so this never runs in the work tree: it exports HEAD
# (plus the working tree's tests/mutation/) to WORKDIR, makes a venv there with the project's
# dependencies (not the project itself: the mutated copy must be what is imported), and runs
# `mutmut run` on sessionspec/reference/ with tests/mutation/ as the tests (JOBS workers, default 4: a
# mutant that hangs waits for its timeout without using a core). Results stay in
# WORKDIR/mutants; `cd WORKDIR && .venv/bin/mutmut results` lists the survivors again.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-/tmp/sessionspec-mutation}"
python="${PYTHON:-python3}"

rm -rf "$work"
mkdir -p "$work"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$work"
cp -r "$repo/tests/mutation/." "$work/tests/mutation/"
cat > "$work/setup.cfg" <<'CFG'
[mutmut]
source_paths = sessionspec/reference/
pytest_add_cli_args_test_selection = tests/mutation/
also_copy =
    sessionspec/spec/
    sessionspec/conformance/
timeout_multiplier = 4
CFG

"$python" -m venv "$work/.venv"
"$work/.venv/bin/python" - "$work/pyproject.toml" > "$work/requirements.txt" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
dev = project["optional-dependencies"]["dev"]
print("\n".join(project["dependencies"] + [d for d in dev if d.startswith("mutmut")]))
PY
"$work/.venv/bin/pip" install -q -r "$work/requirements.txt"

cd "$work"
export SESSIONSPEC_MUTATION=1
.venv/bin/mutmut run --max-children "${JOBS:-4}" || true
.venv/bin/mutmut results
