// A model of the save/load path proposed for codex-mcp-server's FileSessionStorage, written
// for benchmarks/perf.py from a description of that design (no upstream source copied, no npm
// dependencies). Not a backend: only what the benchmark needs.
//
// The design: sessions live in a Map of plain objects with Date timestamps. Every mutation
// sets a dirty flag and, if no save is in flight, starts an async save: the whole store is
// serialised as {version: 1, sessions: [...]} with JSON.stringify(file, null, 2) (toISOString
// timestamps, codexConversationId only when truthy), written with
// fs.promises.writeFile(tmp, content, {mode: 0o600}) and renamed onto the path, with no fsync.
// When a save finishes and the flag is set again, it saves again. flush() awaits the save in
// flight, then does one more full save. The constructor loads with readFileSync + JSON.parse
// and new Date(...) for every timestamp. The serialisation runs synchronously at the start of
// a save (before its first await), as an async function does.
//
//   node [--expose-gc] upstream_model.mjs --work DIR [--repeat N] [--burst-sessions 100]
//        [--burst-turns 10000] [--flush FILE] [--load FILE...]
//
// Prints one JSON object: burst, load (one entry per --load file, in order) and flush (after
// one addTurn, on a copy of --flush in DIR), each with the median, min, max and runs in ms.

import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";

const START = Date.UTC(2026, 0, 1);

export class FileSessionStorage {
  constructor(filePath, { clock = () => new Date() } = {}) {
    this.path = filePath;
    this.clock = clock;
    this.sessions = new Map();
    this.dirty = false;
    this.saving = null; // the save loop in flight, if any
    this.saves = 0; // renames onto the path
    this.load();
  }

  load() {
    let text;
    try {
      text = fs.readFileSync(this.path, "utf8");
    } catch (error) {
      if (error.code === "ENOENT") return;
      throw error;
    }
    const file = JSON.parse(text);
    for (const s of file.sessions) {
      const session = {
        id: s.id,
        createdAt: new Date(s.createdAt),
        lastAccessedAt: new Date(s.lastAccessedAt),
        turns: s.turns.map((t) => ({
          prompt: t.prompt,
          response: t.response,
          timestamp: new Date(t.timestamp),
        })),
      };
      if (s.codexConversationId) session.codexConversationId = s.codexConversationId;
      this.sessions.set(s.id, session);
    }
  }

  createSession() {
    const id = randomUUID();
    const now = this.clock();
    this.sessions.set(id, { id, createdAt: now, lastAccessedAt: now, turns: [] });
    this.markDirty();
    return id;
  }

  addTurn(id, turn) {
    const session = this.sessions.get(id);
    if (!session) return;
    session.turns.push(turn);
    session.lastAccessedAt = this.clock();
    this.markDirty();
  }

  markDirty() {
    this.dirty = true;
    if (!this.saving) this.saving = this.saveLoop();
  }

  async saveLoop() {
    try {
      while (this.dirty) {
        this.dirty = false;
        await this.save();
      }
    } finally {
      this.saving = null;
    }
  }

  serialise() {
    const sessions = [];
    for (const s of this.sessions.values()) {
      const out = {
        id: s.id,
        createdAt: s.createdAt.toISOString(),
        lastAccessedAt: s.lastAccessedAt.toISOString(),
        turns: s.turns.map((t) => ({
          prompt: t.prompt,
          response: t.response,
          timestamp: t.timestamp.toISOString(),
        })),
      };
      if (s.codexConversationId) out.codexConversationId = s.codexConversationId;
      sessions.push(out);
    }
    return JSON.stringify({ version: 1, sessions }, null, 2);
  }

  async save() {
    const content = this.serialise();
    const tmp = `${this.path}.tmp`;
    await fs.promises.writeFile(tmp, content, { mode: 0o600 });
    await fs.promises.rename(tmp, this.path);
    this.saves += 1;
  }

  async flush() {
    if (this.saving) await this.saving;
    this.dirty = false;
    await this.save();
  }
}

function spread(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: values };
}

function collect() {
  if (globalThis.gc) globalThis.gc();
}

async function burst(dir, sessions, turns) {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "sessions.json");
  let now = START;
  const storage = new FileSessionStorage(file, { clock: () => new Date(now) });
  const prompt = "p".repeat(200);
  const response = "r".repeat(200);
  const began = performance.now();
  const ids = [];
  for (let i = 0; i < sessions; i++) ids.push(storage.createSession());
  for (let i = 0; i < turns; i++) {
    now = START + i;
    storage.addTurn(ids[i % sessions], { prompt, response, timestamp: new Date(now) });
  }
  await storage.flush();
  const ms = performance.now() - began;
  return { ms, saves: storage.saves, bytes: fs.statSync(file).size };
}

function parseArgs(argv) {
  const args = { repeat: 5, burstSessions: 100, burstTurns: 10000, load: [], flush: null };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    if (name === "--load") {
      while (i + 1 < argv.length && !argv[i + 1].startsWith("--")) args.load.push(argv[++i]);
    } else if (name === "--work") args.work = argv[++i];
    else if (name === "--repeat") args.repeat = Number(argv[++i]);
    else if (name === "--burst-sessions") args.burstSessions = Number(argv[++i]);
    else if (name === "--burst-turns") args.burstTurns = Number(argv[++i]);
    else if (name === "--flush") args.flush = argv[++i];
    else throw new Error(`unknown argument ${name}`);
  }
  if (!args.work) throw new Error("--work DIR is required");
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const result = { node: process.version, repeat: args.repeat, gc: Boolean(globalThis.gc) };

  const runs = [];
  for (let n = 0; n < args.repeat; n++) {
    collect();
    runs.push(await burst(path.join(args.work, `burst-${n}`), args.burstSessions, args.burstTurns));
  }
  const burstMs = spread(runs.map((r) => r.ms));
  const middle = runs.reduce((a, b) =>
    Math.abs(b.ms - burstMs.median) < Math.abs(a.ms - burstMs.median) ? b : a,
  );
  result.burst = {
    sessions: args.burstSessions,
    turns: args.burstTurns,
    ms: burstMs,
    saves: middle.saves,
    file_bytes: middle.bytes,
  };

  result.load = [];
  for (const file of args.load) {
    const times = [];
    let sessions = 0;
    for (let n = 0; n < args.repeat; n++) {
      collect();
      const began = performance.now();
      const storage = new FileSessionStorage(file);
      times.push(performance.now() - began);
      sessions = storage.sessions.size;
    }
    result.load.push({ file, file_bytes: fs.statSync(file).size, sessions, ms: spread(times) });
  }

  if (args.flush) {
    const dir = path.join(args.work, "flush");
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "sessions.json");
    fs.copyFileSync(args.flush, file);
    const storage = new FileSessionStorage(file, { clock: () => new Date(START + 3600_000) });
    const id = storage.sessions.keys().next().value;
    const turn = { prompt: "p".repeat(200), response: "r".repeat(200), timestamp: new Date(START) };
    const times = [];
    const before = storage.saves;
    for (let n = 0; n < args.repeat; n++) {
      collect();
      const began = performance.now();
      storage.addTurn(id, turn);
      await storage.flush();
      times.push(performance.now() - began);
    }
    result.flush = {
      file_bytes: fs.statSync(args.flush).size,
      ms: spread(times),
      saves_per_flush: (storage.saves - before) / args.repeat,
    };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
