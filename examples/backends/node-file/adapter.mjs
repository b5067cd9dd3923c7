// The stdio adapter of PROTOCOL.md: one JSON request per line on stdin, one response per
// line on stdout, the kit's clock in every request. Logs go to stderr.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { FileSessionStorage, ValidationError } from './storage.mjs';

const { name, version } = JSON.parse(readFileSync(new URL('package.json', import.meta.url)));
let now = new Date();
const clock = () => now; // "now" is the current request's `now` (PROTOCOL.md §2.1)
const instances = new Map();
// Diagnostics (SPEC.md §5) travel on stdout as their own messages (PROTOCOL.md §2.3).
const log = (level, message) => process.stdout.write(`${JSON.stringify({ log: { level, message } })}\n`);

const turnIn = (t) => ({ prompt: t.prompt, response: t.response, timestamp: new Date(t.timestamp) });
const turnOut = (t) => ({ prompt: t.prompt, response: t.response, timestamp: t.timestamp.toISOString() });
const sessionOut = (s) =>
  s && {
    id: s.id,
    createdAt: s.createdAt.toISOString(),
    lastAccessedAt: s.lastAccessedAt.toISOString(),
    turns: s.turns.map(turnOut),
    ...(s.codexConversationId === null ? {} : { codexConversationId: s.codexConversationId }),
  };

const ops = {
  hello: () => ({
    protocol: 1,
    implementation: { name, version, language: 'javascript' },
    levels: ['core', 'durable', 'file-v1'],
  }),
  open: (a) => {
    instances.set(a.instance, new FileSessionStorage(a.path, { clock, log }));
    return null;
  },
  create_session: (a, s) => s.createSession(),
  ensure_session: (a, s) => s.ensureSession(a.sessionId) ?? null,
  get_session: (a, s) => sessionOut(s.getSession(a.sessionId)),
  update_session: (a, s) => {
    const fields = {};
    if ('turns' in a) fields.turns = a.turns.map(turnIn);
    if ('codexConversationId' in a) fields.codexConversationId = a.codexConversationId;
    return s.updateSession(a.sessionId, fields) ?? null;
  },
  delete_session: (a, s) => s.deleteSession(a.sessionId),
  list_sessions: (a, s) => s.listSessions().map(sessionOut),
  add_turn: (a, s) => s.addTurn(a.sessionId, turnIn(a.turn)) ?? null,
  reset_session: (a, s) => s.resetSession(a.sessionId) ?? null,
  set_codex_conversation_id: (a, s) => s.setCodexConversationId(a.sessionId, a.conversationId) ?? null,
  get_codex_conversation_id: (a, s) => s.getCodexConversationId(a.sessionId),
  flush: (a, s) => s.flush() ?? null,
  close: (a, s) => s.close() ?? null, // the name stays: a second close does nothing
};

function errorOf(err) {
  if (err instanceof ValidationError) return { kind: 'ValidationError', message: err.message };
  if (typeof err?.code === 'string' && /^E[A-Z0-9]+$/.test(err.code)) {
    return { kind: 'OSError', errno: err.code, message: err.message };
  }
  return { kind: 'Error', type: err?.name ?? typeof err, message: String(err?.message ?? err) };
}

function answer(request) {
  const { id, op, args = {} } = request;
  now = new Date(request.now);
  const run = Object.hasOwn(ops, op) ? ops[op] : null;
  if (!run) return { id, error: { kind: 'Unsupported', message: `unknown operation ${op}` } };
  try {
    const storage = op === 'hello' || op === 'open' ? null : instances.get(args.instance);
    if (storage === undefined) throw new Error(`no open instance named ${args.instance}`);
    return { id, ok: run(args, storage) };
  } catch (err) {
    return { id, error: errorOf(err) };
  }
}

// Answered one at a time, synchronously; at the end of stdin the process exits normally.
createInterface({ input: process.stdin, crlfDelay: Infinity }).on('line', (line) => {
  if (line.trim()) process.stdout.write(`${JSON.stringify(answer(JSON.parse(line)))}\n`);
});
