// Writes a sessions file the way codex-mcp-server's FileSessionStorage serialises one:
// crypto.randomUUID() ids, Date.prototype.toISOString() timestamps, JSON.stringify(file, null, 2),
// codexConversationId only when truthy. Real JavaScript, so escapes and dates are the engine's own.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const [outPath] = process.argv.slice(2);
const now = new Date();
const texts = [
  'plain', 'unicode: héllo wörld — 你好 — 🚀🎉', 'newlines\nand\ttabs\r\n',
  'quotes " and \\ backslashes', 'control \u0000\u0001\u001f\u007f chars',
  'lone surrogates \ud800 and \udfff', '', 'x'.repeat(10000),
];
const sessions = [];
for (let i = 0; i < texts.length; i++) {
  const at = new Date(now.getTime() - i * 1000);
  const s = {
    id: randomUUID(),
    createdAt: at,
    lastAccessedAt: at,
    turns: texts.slice(0, i + 1).map((t, j) => ({ prompt: t, response: texts[(i + j) % texts.length], timestamp: at })),
    codexConversationId: i % 2 ? `conv_${randomUUID()}` : undefined,
  };
  sessions.push(s);
}
const file = {
  version: 1,
  sessions: sessions.map((s) => ({
    id: s.id,
    createdAt: s.createdAt.toISOString(),
    lastAccessedAt: s.lastAccessedAt.toISOString(),
    turns: s.turns.map((t) => ({ prompt: t.prompt, response: t.response, timestamp: t.timestamp.toISOString() })),
    ...(s.codexConversationId && { codexConversationId: s.codexConversationId }),
  })),
};
writeFileSync(outPath, JSON.stringify(file, null, 2), { mode: 0o600 });
console.log(JSON.stringify({ ids: sessions.map((s) => s.id), turns: sessions.map((s) => s.turns.length) }));
