# %% [markdown]
# # 4 · Under the hood of a safe save
#
# Every save of the sessions file replaces the **whole** file. If the program dies halfway
# through, what is left on disk? With the obvious code, `open(path, "w")` then `write`, the
# answer is "whatever had been written so far": an empty file, or half a JSON document. The
# next start cannot parse it, and the user's conversations are gone. The spec (B19) forbids
# that: *at every instant the path holds a complete old or a complete new version*.
#
# This notebook looks at how the reference keeps that promise, at the level of system calls,
# and then tries hard to break it:
#
# 1. trace a real save with `strace` and read the order of `write`, `fsync`, `rename` and
#    `fsync` of the directory, and why each step is there;
# 2. a crash experiment: start a process that saves large states in a loop, `SIGKILL` it at a
#    random moment, inspect the file; many times, for the reference and for a naive writer;
# 3. plot the outcomes.
#
# Everything happens in a temporary directory, in child processes; your real
# `~/.codex-mcp` is never touched.

# %%
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib.pyplot as plt

from sessionspec import spec

ROOT = Path(tempfile.mkdtemp(prefix="sessionspec-nb04-"))
print("working in", ROOT)

# %% [markdown]
# ## 1. A save, traced
#
# The child process below opens a `reference.FileSessionStorage` whose file lives in a
# directory that does not exist yet, creates one session, adds a turn and calls `flush()`.
# We run it under `strace -f -y`: `-f` follows every thread (the reference saves on a
# background *writer thread*), `-y` prints the path behind each file descriptor, so
# `fsync(3</…/sessions.json.…tmp>)` says which file was synced. If `strace` is not installed
# (or not allowed, as in some containers) we fall back to a spy that wraps the `os` functions
# inside the child: it sees the same calls at the Python level, but not what the kernel was
# actually asked to do, so the output then says "spy" instead of "strace".

# %%
SAVE_ONCE = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime

    if sys.argv[2] == "spy":  # fallback: log the os calls the reference makes, in order
        import os

        fds = {}

        def show(arg):
            if isinstance(arg, int) and arg in fds:
                return f"{arg}<{fds[arg]}>"
            if isinstance(arg, (str, os.PathLike)):
                return f'"{os.fspath(arg)}"'
            if isinstance(arg, int):
                return oct(arg) if 0o400 <= arg <= 0o777 else str(arg)  # modes in octal
            if isinstance(arg, list):  # writev's buffers
                return f"<{sum(map(len, arg))} bytes in {len(arg)} buffers>"
            return f"<{len(arg)} bytes>"

        def spy(name, real):
            def wrapper(*args, **kwargs):
                result = real(*args, **kwargs)
                call = f"{name}({', '.join(map(show, args))})"
                if name == "open":
                    fds[result] = os.fspath(args[0])
                print(f"{call} = {show(result) if name == 'open' else result}", file=sys.stderr)
                if name == "close":
                    fds.pop(args[0], None)
                return result
            return wrapper

        for name in ("mkdir", "chmod", "open", "fchmod", "write", "writev", "fsync", "close",
                     "replace", "rename", "unlink"):
            setattr(os, name, spy(name, getattr(os, name)))

    from sessionspec.reference import FileSessionStorage
    from sessionspec.spec import ConversationTurn

    storage = FileSessionStorage(sys.argv[1])
    session_id = storage.create_session()
    storage.add_turn(session_id, ConversationTurn("hi", "hello", datetime.now(UTC)))
    storage.flush()
    storage.close()
    """
)
(ROOT / "save_once.py").write_text(SAVE_ONCE)
STRACE = shutil.which("strace")
SYSCALLS = "mkdir,chmod,fchmodat,openat,fchmod,write,writev,fsync,fdatasync,close,rename,renameat,renameat2"


def trace_a_save(use_strace):
    """Run save_once.py in a child; return (the calls about the sessions directory, file)."""
    home = ROOT / ("trace-home" if use_strace else "spy-home")
    sessions_file = home / ".codex-mcp" / "sessions.json"
    script = [str(ROOT / "save_once.py"), str(sessions_file)]
    if use_strace:
        trace_file = ROOT / "trace.txt"
        done = subprocess.run(
            [STRACE, "-f", "-y", "-s", "24", "-e", f"trace={SYSCALLS}", "-o", str(trace_file),
             sys.executable, *script, "strace"],
            timeout=60, capture_output=True, text=True,
        )
        if done.returncode != 0:  # e.g. a container that forbids ptrace
            print("strace could not trace here:", done.stderr.strip()[-200:])
            return trace_a_save(use_strace=False)
        raw = trace_file.read_text().splitlines()
        how = "strace"
    else:
        done = subprocess.run([sys.executable, *script, "spy"],
                              check=True, timeout=60, capture_output=True, text=True)
        raw = done.stderr.splitlines()
        how = "the os-function spy (strace is not available here)"
    # Keep the calls about our directory; print it as "~" and drop strace's cwd noise.
    lines = [re.sub(r"AT_FDCWD<[^>]*>", "AT_FDCWD", line).replace(str(home), "~")
             for line in raw if str(home) in line]
    print(f"{len(raw)} calls traced with {how}; {len(lines)} concern the sessions directory:\n")
    for line in lines:
        print(" ", line)
    return lines, sessions_file


lines, sessions_file = trace_a_save(use_strace=STRACE is not None)

# %% [markdown]
# Read it top to bottom. `~` stands for the fake home directory of this experiment. With
# `strace`, the number on the left is the **thread** id: the first lines come from the
# caller's thread, at open (it looks for the file, finds none, and creates nothing: an empty
# store, B11), and the save comes from the writer thread.
#
# 1. **`mkdir(…, 0700)` and `chmod(…, 0700)`** — the first save creates the missing
#    directories, private, whatever the umask (B11, B20). Nothing was created when the store
#    was *opened*; only a mutation that needs saving creates files.
# 2. **`openat(…sessions.json.<pid>-<random>.tmp, O_WRONLY|O_CREAT|O_EXCL|…, 0600)`** — the
#    new content goes to a *temp file* beside the real one, never into the real one. The name
#    is unique to this instance and `O_EXCL` refuses to reuse an existing file, so two
#    servers sharing the file never scribble into each other's temp file (B16, B19).
# 3. **`fchmod(…, 0600)`** — exactly private, even under a permissive umask (B20).
# 4. **`writev(…)`** — the complete new content. `writev` writes a list of buffers in one
#    call: the reference keeps each session's encoded bytes from one save to the next and
#    writes them as they are, rather than joining them into one copy of the file first.
# 5. **`fsync(tmp)`** — force the content to the disk *before* the name points at it.
#    Without it, after a power cut the rename may be on disk while the data is not, and
#    you reboot to a zero-length `sessions.json`: the classic ext4 "zero-length file" bug
#    reports are exactly this missing `fsync`.
# 6. **`rename(tmp, sessions.json)`** — POSIX guarantees the replace is atomic: any other
#    process opening the path sees the old file or the new one, never a mixture, and never
#    no file. This single step is what protects against a *process* crash.
# 7. **`openat(directory)` + `fsync(directory)`** — a rename is a change to the
#    *directory*, and it is durable only once the directory is synced. Until then, a power
#    cut can bring back the old name, and a `flush()` that already returned would have lied.
#
# The same check, as code rather than eyeballs:

# %%
def first(predicate, what):
    for index, line in enumerate(lines):
        if predicate(line):
            return index
    raise AssertionError(f"no {what} in the trace")


TMP = r"sessions\.json\.[^>/\"]*\.tmp"
steps = {
    "create the temp file": first(lambda s: re.search(rf"open(at)?\(.*{TMP}.*0o?600", s), "temp"),
    "write the temp file": first(lambda s: re.search(rf"writev?\(\d+<[^>]*{TMP}>", s), "write"),
    "fsync the temp file": first(lambda s: re.search(rf"fsync\(\d+<[^>]*{TMP}>", s), "fsync"),
    "rename it over": first(lambda s: re.search(rf"(rename|replace).*{TMP}.*sessions\.json\"", s), "rename"),
    "fsync the directory": max(i for i, s in enumerate(lines) if re.search(r"fsync\(\d+<~/\.codex-mcp>\)", s)),
}
for name, index in steps.items():
    print(f"  line {index:>2}: {name}")
assert list(steps.values()) == sorted(steps.values()), "the steps are out of order"
print("order: write -> fsync -> rename -> fsync(dir), as B19 requires")
print("file mode:", oct(sessions_file.stat().st_mode & 0o777),
      " directory mode:", oct(sessions_file.parent.stat().st_mode & 0o777))
print("temp files left:", sorted(p.name for p in sessions_file.parent.glob("*.tmp")))

# %% [markdown]
# ## 2. The crash experiment
#
# A trace shows the *intended* order. An experiment shows the *effect*. The child below
# saves version 0 of one session, then version 1, 2, 3, … forever, each version a single
# turn of about 4 MB so that every save takes a while and a kill is likely to land in the
# middle of one. After each save it prints the version number (for the reference, after
# `flush()` returned: from then on that version is promised to be on disk).
#
# It has two modes:
#
# * `reference` — `FileSessionStorage.update_session(…)` then `flush()`;
# * `naive` — `open(path, "w")` then `json.dump(...)`: what most programs do, and close to
#   what upstream's `fs.writeFile` does (truncate the file, then write into it).
#
# The parent waits until the child says `ready` (imports done, nothing saved yet), sleeps a
# random delay, and sends `SIGKILL`: no `finally`, no `atexit`, no flushing of anything. Then
# it looks at what is on disk.

# %%
SAVER = textwrap.dedent(
    '''
    import json
    import sys
    from datetime import UTC, datetime

    from sessionspec import spec
    from sessionspec.spec import ConversationTurn

    mode, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    STAMP = datetime(2026, 1, 1, tzinfo=UTC)


    def payload(version):
        unit = f"<version {version}>"
        return (unit * (size // len(unit) + 1))[:size]


    if mode == "reference":
        from sessionspec.reference import FileSessionStorage

        storage = FileSessionStorage(path)
        print("ready", flush=True)
        storage.ensure_session("crash-test")
        storage.flush()
        print(0, flush=True)
        version = 0
        while True:
            version += 1
            turn = ConversationTurn(payload(version), "ok", STAMP)
            storage.update_session("crash-test", turns=[turn],
                                   codex_conversation_id=f"version-{version}")
            storage.flush()
            print(version, flush=True)
    else:
        def save(version):
            stamp = spec.format_timestamp(STAMP)
            session = {"id": "crash-test", "createdAt": stamp, "lastAccessedAt": stamp,
                       "turns": []}
            if version:
                session["turns"] = [{"prompt": payload(version), "response": "ok",
                                     "timestamp": stamp}]
                session["codexConversationId"] = f"version-{version}"
            with open(path, "w", encoding="utf-8") as file:  # truncate, then write in place
                json.dump({"version": 1, "sessions": [session]}, file, indent=2)

        print("ready", flush=True)
        version = 0
        while True:
            save(version)
            print(version, flush=True)
            version += 1
    '''
)
(ROOT / "saver.py").write_text(SAVER)
SIZE = 4_000_000


def payload(version):  # the same function as in the child
    unit = f"<version {version}>"
    return (unit * (SIZE // len(unit) + 1))[:SIZE]

# %% [markdown]
# After a kill, the file is classified strictly. *Complete version k* means: the bytes are
# a JSON text, it validates against the **writer** schema, and its content is exactly what
# version k should be (every one of the 4 million characters). Anything else is `empty`
# (zero bytes) or `torn` (not even JSON).

# %%
writer = spec.writer_validator()


def inspect(path):
    """('absent' | 'empty' | 'torn' | 'invalid' | 'mixed' | 'complete', version or None)."""
    if not path.exists():
        return "absent", None
    data = path.read_bytes()
    if not data:
        return "empty", None
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError:
        return "torn", None
    if not writer.is_valid(document):
        return "invalid", None
    (session,) = document["sessions"]
    conversation = session.get("codexConversationId")
    version = 0 if conversation is None else int(conversation.removeprefix("version-"))
    expected = [] if version == 0 else [payload(version)]
    if [turn["prompt"] for turn in session["turns"]] != expected:
        return "mixed", None
    return "complete", version


def crash_once(mode, index, delay):
    run = ROOT / "runs" / f"{mode}-{index:02d}"
    run.mkdir(parents=True)
    path = run / "sessions.json"
    errors = run.with_suffix(".stderr")
    with open(errors, "w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(ROOT / "saver.py"), mode, str(path), str(SIZE)],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    if child.stdout.readline().strip() != "ready":
        child.kill()
        child.wait()
        raise RuntimeError(errors.read_text())
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    # Read the rest through the same buffered stream: readline() may already hold lines.
    out = child.stdout.read()
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, errors.read_text()
    reported = [int(word) for word in out.split()]
    outcome, version = inspect(path)
    return {
        "mode": mode, "run": str(run), "delay_ms": delay * 1000, "outcome": outcome, "version": version,
        "last_reported": reported[-1] if reported else None,
        "temps": len(list(run.glob("sessions.json.*.tmp"))),
    }

# %% [markdown]
# 40 kills per writer, at delays drawn from a seeded random generator between 0 and 150 ms
# (a few saves' worth), two children at a time. The *delays* are reproducible; exactly which
# byte a kill interrupts is up to the scheduler, so the counts vary a little from run to run.
# The invariants checked below must hold on every run.

# %%
RUNS = 40
rng = random.Random(20260101)
plan = [(mode, i, rng.uniform(0.0, 0.150)) for i in range(RUNS) for mode in ("reference", "naive")]
started = time.monotonic()
with ThreadPoolExecutor(max_workers=2) as pool:
    results = list(pool.map(lambda job: crash_once(*job), plan))
print(f"{len(results)} kills in {time.monotonic() - started:.1f} s")
for mode in ("reference", "naive"):
    counts = Counter(r["outcome"] for r in results if r["mode"] == mode)
    print(f"  {mode:<9} {dict(counts)}")

# %% [markdown]
# ### What the reference promises, checked on every kill
#
# * the file is **absent** (killed before the first save finished) or a **complete** version;
#   never empty, torn, mixed or schema-invalid;
# * it is **at least the last version whose `flush()` returned** (the child printed it), and
#   at most one newer (the save that was in flight when the kill came): `flush()` means what
#   it says;
# * it is absent only if no `flush()` had returned yet.

# %%
reference_runs = [r for r in results if r["mode"] == "reference"]
for r in reference_runs:
    assert r["outcome"] in ("absent", "complete"), r
    if r["last_reported"] is None:
        assert r["outcome"] == "absent" or r["version"] == 0, r
    else:
        assert r["outcome"] == "complete", r
        assert r["version"] in (r["last_reported"], r["last_reported"] + 1), r
behind = sum(1 for r in reference_runs
             if r["outcome"] == "complete" and r["version"] == r["last_reported"])
ahead = sum(1 for r in reference_runs
            if r["last_reported"] is not None and r["version"] == r["last_reported"] + 1)
print(f"all {len(reference_runs)} reference kills left a complete file (or none yet)")
print(f"  file == last flushed version: {behind}; one newer (save in flight had renamed): {ahead}")
print("  temp files left behind by a kill:", sum(r["temps"] for r in reference_runs))

naive_runs = [r for r in results if r["mode"] == "naive"]
lost = [r for r in naive_runs if r["outcome"] != "complete"]
print(f"naive writer: {len(lost)} of {len(naive_runs)} kills left a file that cannot be loaded")

# %% [markdown]
# ## 3. The picture
#
# Left and middle: every kill, by delay, coloured by what it left behind. Right: for the
# reference, which version survived each kill, against the last version whose `flush()` had
# returned: the survivor is always on the diagonal or one step above it.

# %%
COLOURS = {"absent": "#9e9e9e", "complete": "#2e7d32", "empty": "#ef6c00", "torn": "#c62828",
           "invalid": "#6a1b9a", "mixed": "#283593"}
bins = [i * 10 for i in range(16)]
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for ax, mode in zip(axes[:2], ("reference", "naive")):
    runs = [r for r in results if r["mode"] == mode]
    kinds = [k for k in COLOURS if any(r["outcome"] == k for r in runs)]
    ax.hist([[r["delay_ms"] for r in runs if r["outcome"] == k] for k in kinds], bins=bins,
            stacked=True, color=[COLOURS[k] for k in kinds], label=kinds)
    ax.set_title(f"{mode}: what {len(runs)} kills left on disk")
    ax.set_xlabel("kill delay after 'ready' (ms)")
    ax.set_ylabel("kills")
    ax.legend()
ax = axes[2]
done = [r for r in reference_runs if r["outcome"] == "complete" and r["last_reported"] is not None]
pairs = Counter((r["last_reported"], r["version"]) for r in done)
ax.scatter([x for x, _ in pairs], [y for _, y in pairs], s=[30 * n for n in pairs.values()],
           color=COLOURS["complete"])  # area ~ number of kills
top = max([r["version"] for r in done], default=1) + 1
ax.plot([0, top], [0, top], color="black", linewidth=0.8, label="survivor = last flushed")
ax.plot([0, top], [1, top + 1], color="black", linewidth=0.8, linestyle="--", label="one newer")
ax.set_title("reference: which version survived")
ax.set_xlabel("last version whose flush() returned")
ax.set_ylabel("version found in the file")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The naive writer's file is broken almost every time, and it is not bad luck. Look at *how*
# it breaks: mostly **empty**, sometimes **torn**. `open(path, "w")` truncates the file to
# zero bytes at once, and only then does `json.dump` start encoding 4 MB of text and writing
# it out in pieces; for nearly the whole life of a save, the path holds nothing or a prefix.
# Encoding first and writing in one call (as upstream's `fs.writeFile(path,
# JSON.stringify(...))` does) narrows that window but cannot close it: between the truncate
# and the last byte there is always a moment when the only copy of the user's history is
# incomplete.
#
# The reference writes just as much, but never *into the path*: the path changes only at the
# `rename`, and a rename is all or nothing. The kill lands in the same places; it just never
# finds the file in a state that matters.
#
# Notice also the `temp files left behind` count. A kill between `openat` and `rename` leaves
# `sessions.json.<pid>-<random>.tmp` behind. That is harmless debris, not corruption: nobody
# reads it, and B16 says the next instance removes temp files older than an hour (younger ones
# may belong to a live writer in another process). We can show it with a clock set two hours
# ahead:

# %%
from datetime import timedelta

from sessionspec.reference import FileSessionStorage

debris = next((r for r in reference_runs if r["temps"]), None)
if debris is None:
    print("no kill happened to leave a temp file this time")
else:
    run = Path(debris["run"])
    print("before:", sorted(p.name for p in run.iterdir()))
    later = spec.utc_now() + timedelta(hours=2)
    FileSessionStorage(run / "sessions.json", clock=lambda: later).close()
    print("after an open two hours later:", sorted(p.name for p in run.iterdir()))

# %% [markdown]
# ## What this experiment does *not* show
#
# `SIGKILL` kills the **process**; the kernel, its page cache and the disk carry on. That is
# the most common crash (OOM killer, `kill -9`, a segfault, a container stopped), and against
# it the `rename` alone is enough. A **power cut** is different: whatever was only in the page
# cache is lost, and only the two `fsync`s make the order "data, then name" hold on the disk
# itself. Testing that needs a block device that can drop unsynced writes (for example Linux
# `dm-log-writes` or `dm-flakey`, or research tools such as ALICE and CrashMonkey); a notebook
# cannot pull the plug. The spec is explicit that crash consistency beyond POSIX `fsync` and
# `rename` (file systems that lie about `fsync`, network file systems) is out of scope.
#
# ## What to take away
#
# * Never write into the file you are replacing. Write a temp file beside it, `fsync` it,
#   `rename` it over, `fsync` the directory.
# * The `rename` protects against process crashes; the `fsync`s extend that to power loss and
#   make `flush()` a real durability promise.
# * A good test of a guarantee tries to break it many times and checks an invariant every
#   time; a trace shows the mechanism, the experiment shows the effect.

# %%
shutil.rmtree(ROOT)
