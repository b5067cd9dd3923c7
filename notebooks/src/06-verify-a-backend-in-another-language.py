# %% [markdown]
# # 6 · Verify a backend in another language
#
# codex-mcp-server is written in TypeScript; a Go or Rust server may keep the same sessions
# file tomorrow. The conformance kit is Python, but it does not need the backend to be: it
# starts an **adapter**, a small program in the backend's language, and talks to it over
# stdin and stdout, one JSON object per line (`sessionspec/spec/PROTOCOL.md`). This is how
# Bowtie reaches JSON Schema implementations in every language.
#
# This notebook
#
# 1. talks to an adapter by hand, to see the protocol;
# 2. runs the kit on a Node.js file backend written from SPEC.md;
# 3. judges the **published** `codex-mcp-server@1.4.10` from npm, whose known failures are
#    declared as *expected*, and shows why that declaration cannot rot.
#
# It needs Node.js (20 or newer) and npm; `apt-get install nodejs npm` on Debian or Ubuntu.

# %%
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import sessionspec
from sessionspec.conformance import verify

ROOT = Path(sessionspec.__file__).resolve().parent.parent
NODE_FILE = ROOT / "examples" / "backends" / "node-file" / "adapter.mjs"
assert NODE_FILE.is_file(), "run this notebook from a clone of the repository"
NODE = shutil.which("node")
assert NODE, "install Node.js 20 or newer and npm"
print(subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip())
work = Path(tempfile.mkdtemp(prefix="nb06-"))

# %% [markdown]
# ## 1. The protocol, by hand
#
# Every request names an operation, its arguments, and **the kit's clock** (`now`): the
# adapter makes the backend see exactly that time, so the kit can test a 24-hour expiry in a
# millisecond. The first request is always `hello`; the answer says who the implementation
# is and which levels it claims. Instances are opened on a path by a name the kit chooses.

# %%
now = "2026-11-27T10:00:00.000Z"
requests = [
    {"id": 0, "op": "hello", "now": now, "args": {"protocol": 1, "spec": "1.3"}},
    {"id": 1, "op": "open", "now": now,
     "args": {"instance": "s1", "path": str(work / "hand" / "sessions.json")}},
    {"id": 2, "op": "ensure_session", "now": now, "args": {"instance": "s1", "sessionId": "demo"}},
    {"id": 3, "op": "ensure_session", "now": now, "args": {"instance": "s1", "sessionId": "no!"}},
    {"id": 4, "op": "list_sessions", "now": now, "args": {"instance": "s1"}},
]  # fmt: skip
lines = "".join(json.dumps(request) + "\n" for request in requests)
done = subprocess.run([NODE, str(NODE_FILE)], input=lines, capture_output=True, text=True)
for line in done.stdout.splitlines():
    print(line[:160])

# %% [markdown]
# Results use the file format's own JSON shapes (camelCase, `toISOString()` timestamps). The
# bad id came back as an error of kind `ValidationError`, which the kit raises as
# `spec.ValidationError`; an `OSError` carries its errno name (`EIO`, `ENOTDIR`…). The backend
# wrote its file at the path it was given, where the kit inspects it itself:

# %%
print((work / "hand" / "sessions.json").read_text())

# %% [markdown]
# ## 2. The kit on a Node.js file backend
#
# `examples/backends/node-file/` is a file backend written in JavaScript from SPEC.md alone
# (about 500 lines), with a 79-line adapter. It claims `file-v1`. `verify()` takes a TARGET
# `stdio:COMMAND` exactly as the command line takes `--stdio COMMAND`:
#
# ```sh
# sessionspec verify --stdio "node examples/backends/node-file/adapter.mjs"
# ```
#
# The file behaviours are checked on the files the Node process writes; checks that kill a
# writer (B31) or run a second process start more adapters. (The smoke profile keeps this
# notebook quick; CI gates use `ci`.)

# %%
def show(report):
    print(f"{report.implementation['name']} {report.implementation['version']}"
          f" ({report.implementation['language']}), levels {', '.join(report.levels)}")
    for result in report.results.values():
        if result.status.value != "N/A" or result.not_applicable:
            why = result.expected_failure or result.not_applicable or ""
            print(f"  {result.id} {result.slug:<26} {result.status:<5} {why[:70]}")
    print(f"  {report.counts()} in {report.duration_s} s; gate {'green' if report.ok else 'RED'}")


node_file = verify("stdio:" + shlex.join([NODE, str(NODE_FILE)]), profile="smoke")
show(node_file)

# %% [markdown]
# Every claimed behaviour passes, with one **N/A**: B24 (reads return snapshots the caller
# cannot change) is about objects in the backend's own language. Over the protocol every
# value is copied by JSON, so the kit cannot observe it, and says so instead of passing it.
# PROTOCOL.md §6 lists every such limit.
#
# ## 3. The published codex-mcp-server, judged
#
# `adapters/node/upstream/adapter.mjs` loads `InMemorySessionStorage` from the npm package
# `codex-mcp-server@1.4.10`, pinned with integrity hashes in a lockfile, and fakes only
# `Date` (with `@sinonjs/fake-timers`) to follow the kit's clock. `adapters/node_install.py`
# runs `npm ci` once into a cache and prints the adapter's command.

# %%
sys.path.insert(0, str(ROOT / "adapters"))
import node_install  # noqa: E402

upstream_command = node_install.stdio_command("upstream")
print(upstream_command)
upstream = verify("stdio:" + upstream_command, profile="smoke")
show(upstream)

# %% [markdown]
# Upstream does not conform, and its adapter says so: its handshake lists each known failure
# with a reason (`expectedFailures`). Those behaviours show as **XFAIL** and keep the gate
# green, which is how a real project adopts the kit before it conforms. `docs/upstream-report.md`
# traces each one to upstream's code. The declaration cannot rot: a declared behaviour that
# starts to pass is an **XPASS** and fails the gate. And without the declaration, exactly
# those behaviours fail:

# %%
import os  # noqa: E402

os.environ["SESSIONSPEC_UPSTREAM_NO_XFAIL"] = "1"  # the adapter, a child process, reads it
try:
    undeclared = verify("stdio:" + upstream_command, profile="smoke")
finally:
    del os.environ["SESSIONSPEC_UPSTREAM_NO_XFAIL"]
print("FAIL without the declaration:", [r.id for r in undeclared.results.values()
                                         if r.status.value == "FAIL"])
print("XFAIL with it:               ", [r.id for r in upstream.results.values()
                                         if r.status.value == "XFAIL"])
print("gate without the declaration:", "green" if undeclared.ok else "RED")

# %% [markdown]
# One of them was found by this very adapter: when 101 sessions are created in the same
# millisecond, upstream evicts the one it has just created (`listSessions` sorts by last
# access alone, and the new session sorts last). The kit's B18 now has a check for it.
#
# ## Writing your own adapter
#
# An adapter is one loop: read a line, call the backend, write a line. The Python one, which
# serves any Python factory (`python -m sessionspec.conformance.stdio_server module:Factory`),
# is the one to translate:

# %%
import inspect  # noqa: E402

from sessionspec.conformance import stdio_server  # noqa: E402

print(inspect.getsource(stdio_server.Adapter.call))

# %% [markdown]
# In CI, run the kit on your adapter and keep its JSON and JUnit reports:
#
# ```sh
# pip install sessionspec
# sessionspec verify --stdio "node my-adapter.js" --profile ci --json report.json --junit junit.xml
# ```

# %%
shutil.rmtree(work, ignore_errors=True)
