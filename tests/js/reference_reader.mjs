// Reads a sessions file written by the Python reference the way codex-mcp-server does:
// readFileSync + JSON.parse + new Date(...). Prints what it read as ASCII-only JSON, with a
// check per timestamp that new Date(s).toISOString() gives back exactly s.
import { readFileSync } from 'node:fs';

const [inPath] = process.argv.slice(2);
const file = JSON.parse(readFileSync(inPath, 'utf8'));
const roundTrips = (s) => typeof s === 'string' && new Date(s).toISOString() === s;
const badTimestamps = [];
for (const s of file.sessions) {
  for (const t of [s.createdAt, s.lastAccessedAt, ...s.turns.map((turn) => turn.timestamp)]) {
    if (!roundTrips(t)) badTimestamps.push(t);
  }
}
const out = JSON.stringify({ version: file.version, sessions: file.sessions, badTimestamps });
// Escape everything beyond ASCII so the reader's locale cannot matter.
console.log(out.replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')));
