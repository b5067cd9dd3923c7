// A file backend of sessionspec 1.3 (levels core, durable, file-v1), written from SPEC.md.
// Write-through (SPEC.md §4.7): every mutation saves synchronously; a failed save is
// remembered and flush() saves again. Synchronous fs calls only, so every syscall of a save
// happens on the main thread, inside the call that caused it.
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const MAX_SESSIONS = 100;
export const SESSION_TTL_MS = 24 * 3600 * 1000;
export const STALE_TEMP_AGE_MS = 3600 * 1000;
export const MAX_FILE_BYTES = 256 * 1024 * 1024;
const ID = /^[A-Za-z0-9_-]{1,256}$/; // JS `$` never accepts a trailing newline
const STAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;
const MIN_MS = -62135596800000; // 0001-01-01T00:00:00.000Z
const MAX_MS = 253402300799999; // 9999-12-31T23:59:59.999Z
const SESSION_KEYS = new Set(['id', 'createdAt', 'lastAccessedAt', 'turns', 'codexConversationId']);
const TURN_KEYS = new Set(['prompt', 'response', 'timestamp']);
const TOP_KEYS = new Set(['version', 'sessions']);
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const NEW_FILE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

export class ValidationError extends Error {
  name = 'ValidationError';
}

export const isValidSessionId = (id) => typeof id === 'string' && ID.test(id);

/** An OSError-like Error: Node's fs errors carry `code` too. */
const osError = (code, message) => Object.assign(new Error(message), { code });

/** Reader grammar of SPEC.md §1.2: [ms since epoch, has non-zero sub-ms digits] or null. */
export function parseTimestamp(text) {
  const m = typeof text === 'string' && STAMP.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const [frac = '', sign, oh = '0', om = '0'] = m.slice(7);
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (y < 1 || !days || d < 1 || d > days || h > 23 || mi > 59 || s > 59) return null;
  if (Number(oh) > 23 || Number(om) > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // Date.UTC would read years 0-99 as 1900-1999
  date.setUTCHours(h, mi, s, Number(frac.slice(0, 3).padEnd(3, '0')));
  const offset = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60000;
  const ms = date.getTime() - offset;
  if (ms < MIN_MS || ms > MAX_MS) return null;
  return [ms, /[1-9]/.test(frac.slice(3))];
}

/** Whether some object of a JSON text (already parsed by JSON.parse) repeats a member name. */
function repeatsMemberName(text) {
  const stack = []; // per open container: a Set of names (objects) or null (arrays)
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (expectName) {
        const names = stack.at(-1);
        const name = JSON.parse(text.slice(i, j + 1));
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      stack.push(c === '{' ? new Set() : null);
      expectName = c === '{';
    } else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') expectName = stack.at(-1) !== null;
  }
  return false;
}

function fsyncPath(p) {
  const fd = fs.openSync(p, O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Create `file` exclusively, exactly 0o600 whatever the umask, with `data`, fsynced. */
function writeNewFile(file, data) {
  const fd = fs.openSync(file, NEW_FILE, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    // pwrite at explicit offsets: only this code makes pwrite64 calls in the process.
    for (let done = 0; done < data.length; ) {
      done += fs.writeSync(fd, data, done, data.length - done, done);
    }
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw err;
  }
  fs.closeSync(fd);
}

/**
 * The bytes at `file`, or null when nothing is there (a dangling symlink included). Opened
 * without blocking and read only if it is a regular file, at most `limit` bytes (B32).
 */
function readRegularFile(file, limit) {
  let fd;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NONBLOCK);
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err; // a socket gives ENXIO, a missing permission EACCES, ...
  }
  try {
    const info = fs.fstatSync(fd);
    if (info.isDirectory()) throw osError('EISDIR', `${file}: is a directory, not a regular file`);
    if (!info.isFile()) throw osError('EINVAL', `${file}: not a regular file`);
    const tooLarge = osError('EFBIG', `${file}: over the ${limit}-byte limit; nothing was moved`);
    if (info.size > limit) throw tooLarge;
    const buffer = Buffer.alloc(Math.min(info.size, limit) + 1); // +1: a file that grew
    let size = 0;
    for (let n = -1; n !== 0 && size < buffer.length; size += n) {
      n = fs.readSync(fd, buffer, size, buffer.length - size, null);
    }
    if (size > limit) throw tooLarge;
    return buffer.subarray(0, size);
  } finally {
    fs.closeSync(fd);
  }
}

export class FileSessionStorage {
  #path;
  #clock;
  #log;
  #sessions = new Map(); // id -> {id, created, accessed, order, turns: [{prompt, response, at}], cid}
  #counter = 0; // access order: a larger order is a later touch
  #temp;
  #dirty = false;
  #errorLogged = false;
  #closed = false;

  constructor(file, { clock = () => new Date(), log, maxFileBytes = MAX_FILE_BYTES } = {}) {
    this.#path = path.resolve(file);
    this.#clock = clock;
    this.#log = log ?? ((level, message) => console.error(`${level}: ${message}`));
    const now = this.#now(); // one reading for the whole constructor (SPEC.md §1.3)
    const raw = readRegularFile(this.#path, maxFileBytes); // B11, B12, B32
    this.#temp = this.#newTempName();
    this.#removeStaleTemps(now);
    if (raw !== null && this.#load(raw, now)) {
      // Lossy: the exact bytes read go to a backup before any save can replace them (B15).
      const backup = this.#writeBackup(raw, now);
      this.#log('WARNING', `${this.#path}: not all of it loaded; kept a copy in ${backup}`);
    }
  }

  // -- time, ids, order ----------------------------------------------------------------
  #now() {
    return Math.floor(this.#clock().getTime()); // Dates hold whole milliseconds already
  }

  #live(id, now) {
    const s = isValidSessionId(id) ? this.#sessions.get(id) : undefined;
    return s && now - s.accessed <= SESSION_TTL_MS ? s : undefined;
  }

  #touch(s, now) {
    s.accessed = now;
    s.order = ++this.#counter;
  }

  /** Purge expired sessions; the rest in list order (B04, B17). */
  #ordered(now) {
    for (const [id, s] of this.#sessions) if (now - s.accessed > SESSION_TTL_MS) this.#sessions.delete(id);
    return [...this.#sessions.values()].sort((a, b) => b.accessed - a.accessed || b.order - a.order);
  }

  /** Create a session, then evict the others last in list order over the cap (B18). */
  #add(id, now) {
    const order = ++this.#counter;
    this.#sessions.set(id, { id, created: now, accessed: now, order, turns: [], cid: null });
    const others = this.#ordered(now).filter((s) => s.id !== id);
    for (const s of others.slice(MAX_SESSIONS - 1)) this.#sessions.delete(s.id);
  }

  static #snapshot(s) {
    const turns = s.turns.map(({ prompt, response, at }) =>
      Object.freeze({ prompt, response, timestamp: new Date(at) }),
    );
    return Object.freeze({
      id: s.id,
      createdAt: new Date(s.created),
      lastAccessedAt: new Date(s.accessed),
      turns: Object.freeze(turns),
      codexConversationId: s.cid,
    });
  }

  static #copyTurn(turn) {
    const { prompt, response, timestamp } = turn;
    return { prompt: String(prompt), response: String(response), at: Math.floor(timestamp.getTime()) };
  }

  // -- the interface (SPEC.md §2.1) ----------------------------------------------------
  createSession() {
    const now = this.#now();
    this.#ordered(now);
    let id;
    do id = randomUUID();
    while (this.#sessions.has(id));
    this.#add(id, now);
    this.#changed(now);
    return id;
  }

  ensureSession(id) {
    if (!isValidSessionId(id)) throw new ValidationError(`session ID must match ${ID.source}`);
    const now = this.#now();
    this.#ordered(now);
    const s = this.#live(id, now);
    if (s) this.#touch(s, now);
    else this.#add(id, now);
    this.#changed(now);
  }

  getSession(id) {
    const s = this.#live(id, this.#now());
    return s ? FileSessionStorage.#snapshot(s) : null;
  }

  /** `fields` may hold `turns` and `codexConversationId`; an absent one is unchanged. */
  updateSession(id, fields = {}) {
    const now = this.#now();
    const s = this.#live(id, now);
    if (!s) return;
    if ('turns' in fields) s.turns = [...fields.turns].map(FileSessionStorage.#copyTurn);
    if ('codexConversationId' in fields) s.cid = fields.codexConversationId ?? null;
    this.#touch(s, now);
    this.#changed(now);
  }

  deleteSession(id) {
    const now = this.#now();
    const s = this.#live(id, now);
    if (!s) return false;
    this.#sessions.delete(s.id);
    this.#changed(now);
    return true;
  }

  listSessions() {
    return this.#ordered(this.#now()).map(FileSessionStorage.#snapshot);
  }

  addTurn(id, turn) {
    const now = this.#now();
    const s = this.#live(id, now);
    if (!s) return;
    s.turns.push(FileSessionStorage.#copyTurn(turn));
    this.#touch(s, now);
    this.#changed(now);
  }

  resetSession(id) {
    this.updateSession(id, { turns: [], codexConversationId: null });
  }

  setCodexConversationId(id, conversationId) {
    this.updateSession(id, { codexConversationId: conversationId });
  }

  getCodexConversationId(id) {
    return this.#live(id, this.#now())?.cid ?? null;
  }

  /** Returns once every mutation is durably saved; throws the save's error otherwise (B22). */
  flush() {
    if (this.#dirty) this.#save(this.#now());
  }

  close() {
    if (this.#closed) return;
    this.flush(); // a failure throws and leaves the instance open (B22)
    this.#closed = true;
  }

  // -- loading (SPEC.md §3.2) ----------------------------------------------------------
  /** Load `raw`; returns whether the load was lossy. An unreadable file is moved aside. */
  #load(raw, now) {
    let doc;
    let repeated;
    try {
      if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) throw new Error('byte-order mark');
      const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
      doc = JSON.parse(text);
      repeated = repeatsMemberName(text);
    } catch (err) {
      return this.#moveAside(`cannot parse (${err.message})`, raw, now);
    }
    if (!isObject(doc)) return this.#moveAside('the top level is not an object', raw, now);
    if (doc.version !== 1) return this.#moveAside(`unknown version ${JSON.stringify(doc.version)}`, raw, now);
    if (!Array.isArray(doc.sessions)) return this.#moveAside("'sessions' is not an array", raw, now);
    let lossy = repeated || unknownMembers(doc, TOP_KEYS);
    const total = doc.sessions.length;
    doc.sessions.forEach((record, index) => {
      lossy = this.#loadRecord(record, `sessions[${index}]`, total - index) || lossy;
    });
    this.#counter = total + 1;
    const live = this.#ordered(now); // the cap applies to what loads (B18)
    for (const s of live.slice(MAX_SESSIONS)) this.#sessions.delete(s.id);
    if (live.length > MAX_SESSIONS) {
      this.#log('WARNING', `${this.#path}: left out ${live.length - MAX_SESSIONS} sessions over the cap`);
    }
    return lossy || live.length > MAX_SESSIONS;
  }

  /** One session record; returns whether something of it was not carried into memory. */
  #loadRecord(record, where, order) {
    const skip = (at, why) => {
      this.#log('WARNING', `${this.#path}: skipped ${at}: ${why}`);
      return true;
    };
    if (!isObject(record)) return skip(where, 'not an object');
    const { id, turns, codexConversationId: cid = null } = record;
    if (!isValidSessionId(id)) return skip(where, 'invalid id');
    if (this.#sessions.has(id)) return skip(where, `repeats the id ${id}`);
    const created = parseTimestamp(record.createdAt);
    const accessed = parseTimestamp(record.lastAccessedAt);
    if (!created || !accessed) return skip(where, 'invalid createdAt or lastAccessedAt');
    if (!Array.isArray(turns)) return skip(where, 'turns is not an array');
    if (cid !== null && typeof cid !== 'string') return skip(where, 'invalid codexConversationId');
    let lossy = created[1] || accessed[1] || unknownMembers(record, SESSION_KEYS);
    const kept = [];
    turns.forEach((turn, j) => {
      const at = isObject(turn) && parseTimestamp(turn.timestamp);
      if (!at || typeof turn.prompt !== 'string' || typeof turn.response !== 'string') {
        lossy = skip(`${where}.turns[${j}]`, 'not an object with a prompt, a response and a timestamp');
        return;
      }
      lossy ||= at[1] || unknownMembers(turn, TURN_KEYS);
      kept.push({ prompt: turn.prompt, response: turn.response, at: at[0] });
    });
    // Earlier in the file = accessed later (B04).
    this.#sessions.set(id, { id, created: created[0], accessed: accessed[0], order, turns: kept, cid });
    return lossy;
  }

  // -- backups (B13-B15, B32): never overwrite anything, never wider than 0o600 --------
  *#backupNames(now) {
    yield `${this.#path}.${now}.bak`;
    for (let n = 1; ; n++) yield `${this.#path}.${now}.${n}.bak`;
  }

  /** Exclusive create of the next free backup name holding `raw`. */
  #writeBackup(raw, now) {
    for (const backup of this.#backupNames(now)) {
      try {
        writeNewFile(backup, raw);
      } catch (err) {
        if (err.code === 'EEXIST') continue;
        throw err;
      }
      fsyncPath(path.dirname(this.#path));
      return backup;
    }
  }

  /** Move the file aside (B13, B14): the store starts empty. Returns false: nothing is lossy. */
  #moveAside(why, raw, now) {
    const info = fs.lstatSync(this.#path);
    let backup;
    // A hard link only when the inode has no other name: chmod-ing a shared inode, or linking
    // a symlink's target, would change another file (B32). Otherwise copy the bytes read.
    if (info.isFile() && info.nlink === 1) {
      for (const name of this.#backupNames(now)) {
        try {
          fs.linkSync(this.#path, name); // fails rather than overwrite, unlike rename
        } catch (err) {
          if (err.code === 'EEXIST') continue;
          break; // cannot link here: copy instead
        }
        try {
          fs.chmodSync(name, info.mode & 0o600);
        } catch (err) {
          fs.unlinkSync(name);
          throw err;
        }
        backup = name;
        break;
      }
    }
    backup ??= this.#writeBackup(raw, now);
    fs.unlinkSync(this.#path);
    fsyncPath(path.dirname(this.#path));
    this.#log('WARNING', `${this.#path}: ${why}; moved it aside to ${backup}`);
    return false;
  }

  // -- saving (SPEC.md §4) -------------------------------------------------------------
  #newTempName() {
    return `${this.#path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  }

  /** Remove temp files of crashed writers, stale only: older than an hour (B16). */
  #removeStaleTemps(now) {
    const dir = path.dirname(this.#path);
    const prefix = `${path.basename(this.#path)}.`;
    const cutoffNs = BigInt(now - STALE_TEMP_AGE_MS) * 1000000n;
    let names;
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      if (err.code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      if (name.length < prefix.length + 5 || !name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
      const file = path.join(dir, name);
      const info = fs.lstatSync(file, { bigint: true, throwIfNoEntry: false });
      if (info?.isFile() && info.uid === BigInt(process.geteuid()) && info.mtimeNs < cutoffNs) {
        fs.rmSync(file, { force: true });
      }
    }
  }

  /** Write-through: save now; a failure is logged once and left to flush() (B22). */
  #changed(now) {
    this.#dirty = true;
    try {
      this.#save(now);
    } catch (err) {
      if (!this.#errorLogged) this.#log('ERROR', `${this.#path}: saving failed: ${err.message}`);
      this.#errorLogged = true;
    }
  }

  #document(now) {
    const sessions = this.#ordered(now).map((s) => ({
      id: s.id,
      createdAt: new Date(s.created).toISOString(),
      lastAccessedAt: new Date(s.accessed).toISOString(),
      turns: s.turns.map(({ prompt, response, at }) => ({
        prompt,
        response,
        timestamp: new Date(at).toISOString(),
      })),
      ...(s.cid === null ? {} : { codexConversationId: s.cid }),
    }));
    // JSON.stringify escapes lone surrogates, so the bytes are valid UTF-8.
    return Buffer.from(JSON.stringify({ version: 1, sessions }, null, 2), 'utf8');
  }

  /** Temp file, fsync, rename over the path, fsync the directory (B19, B20, B11). */
  #save(now) {
    const data = this.#document(now);
    this.#makePrivateDirs(path.dirname(this.#path));
    for (;;) {
      try {
        writeNewFile(this.#temp, data);
        break;
      } catch (err) {
        if (err.code !== 'EEXIST') throw err;
        this.#temp = this.#newTempName(); // someone else's file: leave it, take a new name
      }
    }
    try {
      fs.renameSync(this.#temp, this.#path); // replaces a symlink, never writes through it
    } catch (err) {
      fs.rmSync(this.#temp, { force: true });
      throw err;
    }
    fsyncPath(path.dirname(this.#path));
    this.#dirty = false;
    this.#errorLogged = false;
  }

  /** Create missing directories, each exactly 0o700; fsync each new one's parent (B11, B19). */
  #makePrivateDirs(dir) {
    if (fs.lstatSync(dir, { throwIfNoEntry: false })) return;
    this.#makePrivateDirs(path.dirname(dir));
    try {
      fs.mkdirSync(dir, 0o700);
    } catch (err) {
      if (err.code === 'EEXIST') return; // made meanwhile by someone else: not ours to chmod
      throw err;
    }
    fs.chmodSync(dir, 0o700); // the umask may have narrowed it
    fsyncPath(path.dirname(dir));
  }
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const unknownMembers = (object, known) => Object.keys(object).some((key) => !known.has(key));
