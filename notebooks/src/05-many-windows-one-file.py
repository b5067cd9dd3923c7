# %% [markdown]
# # 5 · Many windows, one file
#
# Every editor window starts its own codex-mcp-server process, and all of them keep sessions
# in the same `~/.codex-mcp/sessions.json`. Each process holds the whole store in memory and
# saves it whole. What happens to one window's conversations when another window saves?
#
# This notebook runs real processes at once on one file:
#
# 1. with a **naive** store, whose save writes its own memory (the last save wins);
# 2. with the reference, which claims the spec's level **`shared`** (SPEC.md §8): every save
#    is a read-merge-write under a lock;
# 3. then it looks at the merge itself, case by case, and at the lock file.
#
# All files live in a temporary directory; nothing touches your real `~/.codex-mcp`.

# %%
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sessionspec.reference import FileSessionStorage
from sessionspec.reference.merge import merge_session
from sessionspec.spec import ConversationTurn, SessionData

ROOT = Path(tempfile.mkdtemp(prefix="sessionspec-nb05-"))

# %% [markdown]
# ## The naive store
#
# Here it is, whole: the reference with the merge switched off. Its save never reads the file
# (so it writes exactly its own memory) and its reads never look at the file after the
# constructor. That is what a store "designed for single-process use" does, and what
# upstream's FileSessionStorage does.

# %%
naive_source = '''
from sessionspec.reference import FileSessionStorage
from sessionspec.spec import Level


class NaiveStorage(FileSessionStorage):
    """Last save wins: never reads the file after the constructor."""

    sessionspec_levels = frozenset({Level.CORE, Level.DURABLE, Level.FILE_V1})

    def _read_if_changed(self, now):
        return None

    def _refresh(self):
        return None
'''
_ = (ROOT / "naive_store.py").write_text(naive_source)

# %% [markdown]
# ## A window, as a process
#
# Each "window" is a separate Python process. It waits for a start signal (a file appearing),
# creates 5 conversations with 4 turns each, deletes one of them, adds 6 turns to one
# conversation every window shares, flushes after every round, and prints what it was told was
# stored. Turns are stamped with the real time, as a server stamps them.

# %%
window_source = '''
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from sessionspec.conformance.loading import load_target
from sessionspec.spec import ConversationTurn

target, path, index, go = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
storage = load_target(target)(path)
while not go.exists():
    time.sleep(0.001)
own = [storage.create_session() for _ in range(5)]
shared = []
for k in range(6):
    for sid in own:
        if k < 4:
            storage.add_turn(sid, ConversationTurn(f"w{index}-{k}", "ok", datetime.now(UTC)))
    storage.ensure_session("team-notes")
    shared.append(f"w{index}-note-{k}")
    storage.add_turn("team-notes", ConversationTurn(shared[-1], "ok", datetime.now(UTC)))
    storage.flush()
storage.delete_session(own[0])
storage.close()
print(json.dumps({"kept": own[1:], "deleted": own[:1], "shared": shared}))
'''
(ROOT / "window.py").write_text(window_source)


def run_windows(target, windows=6):
    """Start `windows` processes on one fresh file at once; return what they were told and
    what a fresh reader finds afterwards."""
    work = Path(tempfile.mkdtemp(dir=ROOT))
    path, go = work / "sessions.json", work / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    children = [
        subprocess.Popen([sys.executable, str(ROOT / "window.py"), target, str(path), str(i), str(go)],
                         stdout=subprocess.PIPE, text=True, env=env)
        for i in range(windows)
    ]
    time.sleep(0.5)
    go.touch()
    told = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    reader = FileSessionStorage(path)
    found = {s.id: s for s in reader.list_sessions()}
    reader.close()
    kept = [sid for t in told for sid in t["kept"]]
    deleted = [sid for t in told for sid in t["deleted"]]
    shared_told = [p for t in told for p in t["shared"]]
    notes = [turn.prompt for turn in found["team-notes"].turns] if "team-notes" in found else []
    stamps = [turn.timestamp for turn in found["team-notes"].turns] if notes else []
    return {
        "conversations lost": f"{sum(sid not in found for sid in kept)} of {len(kept)}",
        "deleted ones back": f"{sum(sid in found for sid in deleted)} of {len(deleted)}",
        "shared notes lost": f"{sum((Counter(shared_told) - Counter(notes)).values())} of {len(shared_told)}",
        "shared notes twice": sum((Counter(notes) - Counter(shared_told)).values()),
        "notes in time order": stamps == sorted(stamps),
    }


# %% [markdown]
# ## 1. Six windows, the naive store

# %%
naive = run_windows("naive_store:NaiveStorage")
naive

# %% [markdown]
# Each window's save replaced the file with that window's memory. Whatever the last window to
# save did not know about is gone: most conversations, and most of the shared notes. Nobody
# got an error; every `flush()` returned.
#
# ## 2. Six windows, the reference (`shared`)

# %%
shared = run_windows("sessionspec.reference:FileSessionStorage")
shared

# %%
assert shared["conversations lost"].startswith("0 of") and shared["shared notes lost"].startswith("0 of")
assert shared["deleted ones back"].startswith("0 of") and shared["shared notes twice"] == 0

# %% [markdown]
# Nothing lost, nothing duplicated, nothing deleted came back, and the shared conversation's
# notes are in the order they were written. `docs/reliability.md` has the same experiment at
# 8 processes, 20 times over.
#
# ## 3. How: read, merge, write, under a lock
#
# A save of the reference takes an exclusive lock on the sidecar file `sessions.json.lock`,
# reads what is on disk **now**, merges it with its own changes, writes the result atomically
# and releases the lock. The merge is *three-way*: it compares both sides with the **base**,
# the state this instance last loaded or saved. Without the base, "the other side does not
# have session X" cannot tell "they deleted it" from "they never saw it".
#
# The merge is a pure function of three sessions (SPEC.md §8.2), so we can try it directly.

# %%
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def at(ms):
    return T0 + timedelta(milliseconds=ms)


def conversation(*prompts, touched=0, conv=None):
    turns = tuple(ConversationTurn(p, "ok", at(int(p[1:]) if p[1:].isdigit() else 0)) for p in prompts)
    return SessionData("x", T0, at(touched), turns, conv)


def show(result):
    return None if result is None else ([t.prompt for t in result.turns], result.codex_conversation_id)


base = conversation("b0")
print("unchanged here, they appended  :", show(merge_session(base, base, conversation("b0", "t5", touched=5))))
print("we deleted, they did not touch  :", show(merge_session(base, None, base)))
print("we deleted, they added a turn   :", show(merge_session(base, None, conversation("b0", "t5", touched=5))))
print("both appended                   :", show(merge_session(base, conversation("b0", "l3", "l9", touched=9),
                                                           conversation("b0", "d5", touched=5))))
print("we reset, they appended         :", show(merge_session(base, conversation(touched=4),
                                                           conversation("b0", "d5", touched=5))))
print("both set the conversation id    :", show(merge_session(base, conversation("b0", touched=3, conv="ours"),
                                                           conversation("b0", touched=7, conv="theirs"))))

# %% [markdown]
# Read the lines against the rules:
#
# * a side that changed nothing since the base takes the other side whole;
# * a delete sticks against a copy nobody touched (B26), but a turn someone typed after our
#   base wins over our delete: nothing typed is lost;
# * turns both sides added are merged by timestamp, each exactly once (B27); a reset keeps
#   the other side's new turns;
# * for the conversation id, the later touch wins (B28).
#
# ## The lock file, and seeing the others
#
# The lock is a small sidecar file, created `0o600` and never deleted (deleting it on release
# would let two processes lock two different files at once). Reads check the file with one
# `stat` and take in other windows' saves when it changed (B29): a conversation started in one
# window is found in another.

# %%
path = ROOT / "two-windows" / "sessions.json"
left, right = FileSessionStorage(path), FileSessionStorage(path)
started = left.create_session()
left.flush()
print("right finds left's new conversation:", right.get_session(started) is not None)
right.add_turn(started, ConversationTurn("hello from the right", "ok", datetime.now(UTC)))
right.close(), left.close()
print(sorted(p.name for p in path.parent.iterdir()))
print("lock file mode:", oct(os.stat(path.with_name("sessions.json.lock")).st_mode & 0o777))

# %% [markdown]
# ## What to take away
#
# * "Last save wins" loses data silently whenever two processes share a file; every editor
#   window is such a process.
# * A safe shared save needs three things: a lock around read-merge-write, a **base** to
#   merge against, and a merge defined for every field, so every implementation, in every
#   language, computes the same result.
# * The kit checks all of it (`sessionspec verify … ` reports B25–B30 for a backend that
#   claims `shared`), with instances in one process and with real processes at once.
