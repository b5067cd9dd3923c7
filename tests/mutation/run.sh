#!/usr/bin/env bash
# Mutation testing with mutmut 3, on demand, not in CI (docs/mutation-testing.md has the figures).
#
#     bash tests/mutation/run.sh [TARGET] [WORKDIR] [MUTANT ...]
#
# TARGET says what is mutated and which tests must catch it (the kill criterion):
#
#   reference  sessionspec/reference/ (the default). Tests: tests/mutation/test_kit_on_reference.py,
#              the kit's smoke profile on both reference backends. Killed: the kit fails them.
#   spec       the spec's helpers, sessionspec/spec/model.py (to_millis, parse_timestamp,
#              format_timestamp, is_valid_session_id, ...). Tests: the ones that hold the helpers
#              to the vectors (tests/test_spec_vectors.py, tests/test_reference_vectors.py,
#              tests/test_spec_schemas.py), the oracle's cross-checks against the helpers
#              (four tests of tests/test_oracle.py) and tests/test_spec_helpers_edges.py.
#   kit        the kit's model and oracle, sessionspec/conformance/{model,oracle}.py
#              (KIT_FILES="model oracle oracle_reader" adds the reader oracle). Tests:
#              tests/mutation/test_kit_judges.py (the reference must PASS, one seeded fault per
#              behaviour must FAIL), tests/test_oracle.py, tests/test_conformance_model.py,
#              tests/test_oracle_edges.py.
#
# WORKDIR defaults to /tmp/sessionspec-mutation (reference) or /tmp/sessionspec-mutation-TARGET.
# MUTANT ... are names or globs given to `mutmut run` (for example
# 'sessionspec.conformance.oracle.x_read_timestamp*'): only those are run; they need WORKDIR.
# For compatibility, a first argument that is not a TARGET is the WORKDIR of a reference run.
# RESUME=1 carries on in an existing WORKDIR (an interrupted run) without copying anything.
#
# mutmut rewrites the files it mutates, so this never runs in the work tree: it copies the
# WORKING TREE as it is on disk (pyproject.toml, sessionspec/ and tests/, without caches;
# uncommitted changes included, not HEAD) to WORKDIR, makes a venv with the project's
# dependencies but not the project (the mutated copy must be what is imported, also by the
# kit's child processes; MUTATION_VENV, default /tmp/sessionspec-mutation-venv, is made once
# and reused), writes mutmut's config and runs `mutmut run` with JOBS workers (default 4: a
# mutant that hangs waits for its timeout without using a core; use JOBS=1 on a busy machine).
# tests/mutation/mutation_plugin.py pins the hypothesis examples of the test suites and ends a
# test that hangs (SESSIONSPEC_MUTATION_TEST_SECONDS, default 180) as a mutmut timeout. Results
# stay in WORKDIR/mutants; `cd WORKDIR && .venv/bin/mutmut results` lists the survivors again.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"

target=reference
case "${1:-}" in
    reference | spec | kit) target="$1"; shift ;;
esac
if [ "$target" = reference ]; then
    default_work=/tmp/sessionspec-mutation
else
    default_work="/tmp/sessionspec-mutation-$target"
fi
work="${1:-$default_work}"
[ $# -gt 0 ] && shift
python="${PYTHON:-python3}"
venv="${MUTATION_VENV:-/tmp/sessionspec-mutation-venv}"

case "$work" in
    "" | / | "$repo" | "$repo"/*) echo "refusing WORKDIR $work" >&2; exit 2 ;;
esac
if [ "${RESUME:-0}" = 1 ] && [ -d "$work/mutants" ]; then
    # Carry on where an interrupted run stopped: same copy, same config, the stats mutmut
    # saved; mutants with a result keep it (naming mutants runs those again).
    cd "$work"
    export SESSIONSPEC_MUTATION=1
    export PYTHONPATH="$work/tests/mutation${PYTHONPATH:+:$PYTHONPATH}"
    export PYTEST_ADDOPTS="-p mutation_plugin${PYTEST_ADDOPTS:+ $PYTEST_ADDOPTS}"
    .venv/bin/mutmut run --max-children "${JOBS:-4}" "$@" || true
    .venv/bin/mutmut results
    exit 0
fi
rm -rf "$work"
mkdir -p "$work"
# The working tree, not HEAD: what is tested is what is on disk.
tar -C "$repo" -cf - \
    --exclude=__pycache__ --exclude=.hypothesis --exclude=.pytest_cache \
    --exclude=.mypy_cache --exclude=.ruff_cache --exclude=mutants \
    pyproject.toml sessionspec tests | tar -x -C "$work"

case "$target" in
reference)
    cat > "$work/setup.cfg" <<'CFG'
[mutmut]
source_paths = sessionspec/reference/
pytest_add_cli_args_test_selection = tests/mutation/test_kit_on_reference.py
also_copy =
    sessionspec/__init__.py
    sessionspec/spec/
    sessionspec/conformance/
timeout_multiplier = 4
CFG
    ;;
spec)
    cat > "$work/setup.cfg" <<'CFG'
[mutmut]
source_paths = sessionspec/spec/
only_mutate = sessionspec/spec/model.py
pytest_add_cli_args_test_selection =
    tests/test_spec_vectors.py
    tests/test_reference_vectors.py
    tests/test_spec_schemas.py
    tests/test_spec_helpers_edges.py
    tests/test_oracle.py::test_timestamp_grammar_agrees_with_spec_parse_timestamp
    tests/test_oracle.py::test_to_millis_and_format_agree_with_spec
    tests/test_oracle.py::test_naive_datetimes_are_rejected_by_both
    tests/test_oracle.py::test_id_rule_agrees_with_spec
also_copy =
    sessionspec/__init__.py
    sessionspec/reference/
    sessionspec/conformance/
timeout_multiplier = 4
CFG
    ;;
kit)
    {
        echo "[mutmut]"
        echo "source_paths = sessionspec/conformance/"
        echo "only_mutate ="
        for name in ${KIT_FILES:-model oracle}; do
            echo "    sessionspec/conformance/$name.py"
        done
        cat <<'CFG'
pytest_add_cli_args_test_selection =
    tests/mutation/test_kit_judges.py
    tests/test_oracle.py
    tests/test_conformance_model.py
    tests/test_oracle_edges.py
pytest_add_cli_args =
    -m
    not slow
    -k
    not (foreign_files_cover or foreign_files_are_deterministic or schema_documents or valid_documents or mutated_documents or vector_files_are or encode_document)
do_not_mutate_patterns =
    ^\s*raise \w+Error\(
also_copy =
    sessionspec/__init__.py
    sessionspec/spec/
    sessionspec/reference/
timeout_multiplier = 4
CFG
    } > "$work/setup.cfg"
    ;;
esac
if [ ! -x "$venv/bin/mutmut" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" - "$work/pyproject.toml" > "$work/requirements.txt" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
dev = project["optional-dependencies"]["dev"]
print("\n".join(project["dependencies"] + [d for d in dev if d.startswith("mutmut")]))
PY
"$venv/bin/pip" install -q -r "$work/requirements.txt"
ln -s "$venv" "$work/.venv"

cd "$work"
export SESSIONSPEC_MUTATION=1
export PYTHONPATH="$work/tests/mutation${PYTHONPATH:+:$PYTHONPATH}"
export PYTEST_ADDOPTS="-p mutation_plugin${PYTEST_ADDOPTS:+ $PYTEST_ADDOPTS}"
echo "mutation target $target in $work (mutmut $(.venv/bin/python -c "import importlib.metadata as m; print(m.version('mutmut'))"))"
.venv/bin/mutmut run --max-children "${JOBS:-4}" "$@" || true
.venv/bin/mutmut results
