# %% [markdown]
# # 2 · The reference storage
#
# `reference.FileSessionStorage` is the small, deliberately plain implementation of the spec
# that keeps sessions in the JSON file of notebook 1. It exists so that there is *one* program
# everyone can read to answer "what should happen when…?", and so that the conformance kit
# has something that must pass every behaviour.
#
# This notebook uses it the way codex-mcp-server would, and watches the file:
#
# 1. create sessions, persist them, reopen them;
# 2. what `flush()` promises (write-behind, durability) and what happens when a save fails;
# 3. a corrupt file, and the byte-identical `.bak` it leaves;
# 4. expiry (TTL) and the cap (LRU), driven by a **fake clock**;
# 5. the environment-variable factory that picks a backend.
#
# All files live in a temporary directory; nothing touches your real `~/.codex-mcp`.

# %%
import hashlib
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sessionspec import reference
from sessionspec import spec
from sessionspec.reference import FileSessionStorage, InMemorySessionStorage, create_session_storage
from sessionspec.spec import ConversationTurn

ROOT = Path(tempfile.mkdtemp(prefix="sessionspec-nb02-"))

# The reference reports through `logging` (it never prints). Show its messages here, with
# the temporary directory abbreviated to $TMP.
class Abbreviate(logging.Formatter):
    def format(self, record):
        return super().format(record).replace(str(ROOT), "$TMP")


handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(Abbreviate("  [log] %(levelname)s %(name)s: %(message)s"))
logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)

# %% [markdown]
# ## A clock you can hold still
#
# Sessions expire after 24 hours, backups are named after the current millisecond, and list
# order follows access times. Testing any of that against the wall clock means sleeping for a
# day or accepting flaky results. So the spec makes the clock an **input**: every backend
# takes `clock=`, a function returning an aware UTC `datetime`, and uses it as its *only*
# source of "now" (SPEC.md §1.3). Here is the whole fake clock:

# %%
class FakeClock:
    """Stands still until advanced: time becomes something a test decides."""

    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now


clock = FakeClock(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
clock(), clock.advance(minutes=5)

# %% [markdown]
# ## 1. Create, persist, reopen
#
# The file's directory does not exist yet. Opening a store on a missing file gives an empty
# store and **creates nothing** (B11): a program that merely looks must leave no trace.

# %%
path = ROOT / "home" / ".codex-mcp" / "sessions.json"
storage = FileSessionStorage(path, clock=clock)
print("sessions:", storage.list_sessions())
print("directory created by opening?", path.parent.exists())

# %%
first = storage.create_session()
clock.advance(seconds=30)
storage.add_turn(first, ConversationTurn("What is a rename?", "An atomic replace.", clock()))
storage.set_codex_conversation_id(first, "conv_0001")
clock.advance(seconds=30)
storage.ensure_session("my-own-id")  # clients may bring their own ids (B07, B08)
storage.flush()

print("created:", first)
print(path.read_text())

# %% [markdown]
# The file is in list order: most recently accessed first (`my-own-id` was touched last).
# It is writer-valid, private, and its new directories are private too, whatever the umask
# (B10, B11, B20):

# %%
document = json.loads(path.read_bytes())
print("writer-valid:", spec.writer_validator().is_valid(document))
print("file mode:", oct(stat.S_IMODE(path.stat().st_mode)))
print("directory modes:", oct(stat.S_IMODE(path.parent.stat().st_mode)),
      oct(stat.S_IMODE(path.parent.parent.stat().st_mode)))

# %% [markdown]
# Close it and open a *new instance* on the same path. Everything comes back: ids, turns,
# conversation ids, both timestamps to the millisecond, and the list order (B09). Reads
# return frozen snapshots, so we can compare them with `==`.

# %%
before = storage.list_sessions()
storage.close()

reopened = FileSessionStorage(path, clock=clock)
after = reopened.list_sessions()
print("same state after reopen:", before == after)
print([s.id for s in after])
print(after[1].turns[0])

# %% [markdown]
# ## 2. Write-behind, and what `flush()` promises
#
# A save rewrites the whole file: serialise, write, `fsync`, rename, `fsync` the directory
# (notebook 4 traces it). That takes milliseconds, sometimes much more on a busy disk, and a
# server handling a conversation should not wait for it on every turn. So the reference
# **writes behind**: a mutation changes memory and returns at once; a writer thread saves the
# latest state, and a burst of mutations is coalesced into few saves.
#
# That makes one method important: **`flush()` returns only when everything mutated before
# the call is durably on disk** (B21), and raises `OSError` if that write failed (B22).
# `close()` flushes, and so does leaving a `with` block. A program that forgets `close()` is
# still saved at a normal interpreter exit (the reference registers an `atexit` hook), but no
# hook runs on `kill -9`, an OOM kill or a power cut (notebook 4): call `flush()` wherever you
# promise someone that their data is safe.

# %%
chat = reopened.create_session()
started = time.perf_counter()
for n in range(500):
    reopened.add_turn(chat, ConversationTurn(f"question {n}", f"answer {n}", clock()))
mutations = time.perf_counter() - started

in_file_now = {s["id"]: len(s["turns"]) for s in json.loads(path.read_bytes())["sessions"]}
started = time.perf_counter()
reopened.flush()
flushing = time.perf_counter() - started
in_file_after = {s["id"]: len(s["turns"]) for s in json.loads(path.read_bytes())["sessions"]}

print(f"500 add_turn calls: {mutations * 1000:.1f} ms in total (they never wait for the disk)")
print(f"turns of the new session in the file right after them: {in_file_now.get(chat, 0)}"
      " (anything from 0 to 500: the writer thread is racing us)")
print(f"flush(): {flushing * 1000:.1f} ms; turns in the file after it: {in_file_after[chat]}")
assert in_file_after[chat] == 500

# %% [markdown]
# What if the save fails: disk full, the directory gone, a permission changed under us? A
# mutation must not raise (the caller's conversation goes on, memory is the truth); the
# failure is logged **once** at ERROR, not retried in a hot loop, and reported by the next
# `flush()`. Memory is never rolled back, and once the fault is cleared the next `flush()`
# writes the full current state.
#
# We break a save for real: the store's directory is missing and a plain *file* sits where
# it should be created, so `mkdir` fails (this works even as root, unlike permission bits).

# %%
broken_dir = ROOT / "flaky"
flaky = FileSessionStorage(broken_dir / "sessions.json", clock=clock)
broken_dir.write_text("not a directory")  # the fault

flaky.ensure_session("survivor")  # returns normally: memory changed, the save is behind
try:
    flaky.flush()
except OSError as exc:
    print("flush() raised", type(exc).__name__, "-", exc.strerror)
print("still in memory:", [s.id for s in flaky.list_sessions()])

broken_dir.unlink()  # clear the fault
flaky.flush()
print("after the fault is cleared, the file holds:",
      [s["id"] for s in json.loads((broken_dir / "sessions.json").read_bytes())["sessions"]])
flaky.close()

# %% [markdown]
# ## 3. A corrupt file and its `.bak`
#
# Files get damaged: a naive writer killed mid-save (notebook 4), a disk error, a hand edit
# gone wrong. The reader's duty (B13) is to **never destroy what it cannot read**: the file is
# moved aside to `sessions.json.<epoch-ms>.bak`, byte for byte, the store starts empty, and a
# WARNING names the backup so a human (or a newer program) can recover it. The move uses
# `link` + `unlink`, never a plain rename, so it can never overwrite an earlier backup.
#
# We produce a realistic corruption: the file cut off in the middle, as a torn write leaves it.

# %%
reopened.close()
good_bytes = path.read_bytes()
torn = good_bytes[: len(good_bytes) // 2]
path.write_bytes(torn)

clock.advance(minutes=1)
damaged = FileSessionStorage(path, clock=clock)
print("sessions loaded:", damaged.list_sessions())
print("sessions.json still there?", path.exists())
backups = sorted(path.parent.glob("sessions.json.*.bak"))
print("backups:", [b.name for b in backups])

# %% [markdown]
# The number in the name is the fake clock's "now" in milliseconds since 1970, which is why a
# test can predict it. The content is the damaged file *exactly*, and the backup is as
# private as the file was:

# %%
backup = backups[0]
epoch_ms = (clock() - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
print("expected name:", f"sessions.json.{epoch_ms}.bak", "->", backup.name == f"sessions.json.{epoch_ms}.bak")
print("byte-identical:", backup.read_bytes() == torn)
print("sha256 of what we wrote:", hashlib.sha256(torn).hexdigest()[:16])
print("sha256 of the backup:   ", hashlib.sha256(backup.read_bytes()).hexdigest()[:16])
print("backup mode:", oct(stat.S_IMODE(backup.stat().st_mode)))
damaged.close()

# %% [markdown]
# If the same thing happens again in the same millisecond, the name is taken; the next backup
# gets `.1.bak`, and the first one is untouched:

# %%
path.write_bytes(b"\xef\xbb\xbf" + good_bytes)  # a byte-order mark: not allowed either (B13)
FileSessionStorage(path, clock=clock).close()
print([b.name for b in sorted(path.parent.glob("sessions.json.*.bak"))])
print("first backup unchanged:", backup.read_bytes() == torn)

# %% [markdown]
# Moving aside is for files that cannot be read *at all*. A file that is readable but carries
# something this version cannot keep (an unknown member, a record with a bad timestamp) is
# loaded record by record; the bad records are skipped with a WARNING each, and because the
# next save would lose them, the **original bytes are copied** to a backup first (B15). The
# file itself stays in place.

# %%
for b in path.parent.glob("sessions.json.*.bak"):
    b.unlink()
lossy = json.loads(good_bytes)
by_id = {s["id"]: s for s in lossy["sessions"]}
by_id["my-own-id"]["pinned"] = True  # an unknown member: a newer program's data
by_id[first]["turns"][0]["timestamp"] = "yesterday"  # a bad turn: skipped alone
lossy_bytes = json.dumps(lossy, indent=2).encode()
path.write_bytes(lossy_bytes)

kept = FileSessionStorage(path, clock=clock)
print("loaded:", [(s.id, len(s.turns)) for s in kept.list_sessions()])
(copy,) = path.parent.glob("sessions.json.*.bak")
print("backup is the original:", copy.read_bytes() == lossy_bytes,
      "| file still in place:", path.read_bytes() == lossy_bytes)
kept.close()

# %% [markdown]
# ## 4. Expiry and the cap, on a fake clock
#
# **TTL.** A session is live until `now - last_accessed_at > 24 h`: strictly greater, so at
# exactly 24 hours it is still there (B17). Reading does **not** touch (`get_session` is a pure
# read, B23), so looking at a session does not keep it alive; using it (`add_turn`, `ensure_session`,
# …) does.

# %%
clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
ttl_path = ROOT / "ttl" / "sessions.json"
store = FileSessionStorage(ttl_path, clock=clock)
idle = store.create_session()
busy = store.create_session()

for hours in (12, 12):
    clock.advance(hours=hours)
    store.get_session(idle)  # a read: no touch
    store.add_turn(busy, ConversationTurn("still there?", "yes", clock()))
print("after exactly 24 h:   idle is", "live" if store.get_session(idle) else "expired")
clock.advance(milliseconds=1)
print("after 24 h + 1 ms:    idle is", "live" if store.get_session(idle) else "expired",
      "| busy is", "live" if store.get_session(busy) else "expired")

store.add_turn(idle, ConversationTurn("hello?", "", clock()))  # no revival: does nothing
print("add_turn revived it?", store.get_session(idle) is not None)
store.flush()
print("ids in the file:", [s["id"] for s in json.loads(ttl_path.read_bytes())["sessions"]])
store.close()

# %% [markdown]
# **LRU.** At most 100 live sessions; creating the 101st evicts the one *last in list order*,
# the least recently accessed (B18). List order breaks timestamp ties by access order, so the
# rule holds even when the clock does not move at all, which is common with coarse clocks and
# is exactly what this fake clock does below. The in-memory backend shares the reference's
# rules, so it serves here.

# %%
clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))  # never advanced: all ties
memory = InMemorySessionStorage(clock=clock)
for n in range(100):
    memory.ensure_session(f"s{n:03d}")
print("oldest three:", [s.id for s in memory.list_sessions()[-3:]])

memory.ensure_session("s000")  # touch the oldest: now it is the most recent
memory.ensure_session("s100")  # the 101st session
ids = [s.id for s in memory.list_sessions()]
print("count:", len(ids), "| newest three:", ids[:3], "| oldest three:", ids[-3:])
print("evicted:", sorted({f"s{n:03d}" for n in range(101)} - set(ids)))

# %% [markdown]
# `s000` survived because it was touched; `s001` went, although every session has the same
# timestamp. A backend that sorted by timestamp only would evict an arbitrary session here, and
# its "recent sessions" list would shuffle across restarts: that was upstream's bug, and the
# kit has a check that finds it (notebook 3 plants it on purpose).
#
# ## 5. Choosing a backend from the environment
#
# codex-mcp-server picks its storage from environment variables, and
# `reference.create_session_storage()` does the same:
#
# | variable | effect |
# | --- | --- |
# | `CODEX_MCP_MEMORY_ONLY=true` | in-memory backend: nothing is written anywhere |
# | `CODEX_MCP_SESSION_FILE=/some/path.json` | file backend at that path (`~` expanded) |
# | neither | file backend at `reference.DEFAULT_PATH` (`~/.codex-mcp/sessions.json`) |
#
# We try the first two, restoring the environment afterwards. We do **not** call it with
# neither set: that would open your real sessions file.

# %%
print("default path:", reference.DEFAULT_PATH)
saved = {name: os.environ.pop(name, None)
         for name in ("CODEX_MCP_MEMORY_ONLY", "CODEX_MCP_SESSION_FILE")}
try:
    os.environ["CODEX_MCP_MEMORY_ONLY"] = "true"
    with create_session_storage() as chosen:
        print("MEMORY_ONLY=true   ->", type(chosen).__name__)

    del os.environ["CODEX_MCP_MEMORY_ONLY"]
    os.environ["CODEX_MCP_SESSION_FILE"] = str(ROOT / "from-env" / "sessions.json")
    with create_session_storage(clock=clock) as chosen:
        print("SESSION_FILE=…     ->", type(chosen).__name__, "at", chosen.path.relative_to(ROOT))
        chosen.create_session()
    print("written on close:", (ROOT / "from-env" / "sessions.json").exists())
finally:
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value

# %% [markdown]
# ## What to take away
#
# * Opening creates nothing; the first save creates private directories and a private file.
# * Mutations are cheap and never raise for I/O; **`flush()` is the durability point**, and
#   it tells you when a save failed. Call it (or `close()`) before you report success.
# * A file the reader cannot understand is moved aside byte-identical and never overwritten;
#   a file it can partly understand is kept and backed up before the first save.
# * Time is an input. A fake clock makes the 24-hour boundary and the LRU order testable to
#   the millisecond.
#
# Next: notebook 3 writes a backend of its own and lets the conformance kit judge it.

# %%
shutil.rmtree(ROOT)
