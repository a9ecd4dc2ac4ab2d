// Client-side state: the user's rooms, a contiguous window of each room's messages, the outbox
// of messages not yet acknowledged, and what the user has seen (for unread badges).
//
// Invariant per room: once `loaded`, the messages held form one contiguous seq range
// [lo, hi] (the server's seqs have no gaps). Live messages are appended only at hi + 1; any
// other seq means something was missed and the caller fetches `history` with after = hi.

export class RoomState {
  constructor(room) {
    this.id = room.id;
    this.name = room.name;
    this.visibility = room.visibility;
    this.kind = room.kind || 'group';  // group | direct
    this.created_by = room.created_by;
    this.member_count = room.member_count;
    this.role = room.role || null;       // owner | admin | member (null: not told yet)
    this.last_seq = room.last_seq || 0; // newest seq the server has told us about
    this.extra = room;                  // the full object, so future fields (peer, topic…) stay reachable
    this.bySeq = new Map();             // seq -> Message
    this.seqs = [];                     // ascending
    this.loaded = false;                // the newest page (or more) is held
    this.hasOlder = false;
    this.loadingOlder = false;
    this.loading = null;                // promise of the first load
    this.catchingUp = false;
    this.catchUpAgain = false;
    this.typing = new Map();            // user id -> {user, until}
    this.notify = room.notify || 'all'; // notification level: all | mentions | none
    this.muted = !!room.muted;
    this.pins = null;                   // [{message, pinned_by, at}] once fetched (pins panel, pin buttons)
    // Unread = unreadBase (as of the last hello: the server's own count when it keeps read
    // state, else last_seq above what this browser saw) + messages from others received since.
    this.unreadBase = 0;
    this.unreadSeqs = new Set();
    // Mentions of the user among the unread, counted the same way.
    this.mentionBase = 0;
    this.mentionSeqs = new Set();
  }

  /**
   * Unread as of a hello (or a first sight): `serverUnread` when the server counts, else seqs
   * above `seen`; `serverMentions` likewise (0 when the server does not count them).
   */
  resetUnread(seen, serverUnread, serverMentions) {
    this.unreadBase = typeof serverUnread === 'number' ? Math.max(0, serverUnread) : Math.max(0, this.last_seq - seen);
    this.mentionBase = typeof serverMentions === 'number' ? Math.max(0, serverMentions) : 0;
    this.unreadBaseSeq = this.last_seq;
    this.unreadSeqs.clear();
    this.mentionSeqs.clear();
  }

  /** A live message from someone else, for a room not being read right now. */
  countUnread(seq, seen, mentionsMe = false) {
    if (seq > seen && seq > (this.unreadBaseSeq || 0)) {
      this.unreadSeqs.add(seq);
      if (mentionsMe) this.mentionSeqs.add(seq);
    }
  }

  /** The user has seen up to `seq` (here or, with server read state, on any device). */
  readUpTo(seq) {
    if (seq >= this.last_seq || seq >= (this.unreadBaseSeq || 0)) { this.unreadBase = 0; this.mentionBase = 0; }
    for (const s of this.unreadSeqs) if (s <= seq) this.unreadSeqs.delete(s);
    for (const s of this.mentionSeqs) if (s <= seq) this.mentionSeqs.delete(s);
  }

  get unread() { return this.unreadBase + this.unreadSeqs.size; }
  // Not capped by `unread`: at the `mentions` and `none` levels the server counts mentions only.
  get mentions() { return this.mentionBase + this.mentionSeqs.size; }

  /** Owners and admins moderate (delete others' messages) in group rooms. */
  get moderates() { return (this.role === 'owner' || this.role === 'admin') && this.kind !== 'direct'; }

  update(room) {
    this.name = room.name ?? this.name;
    this.visibility = room.visibility ?? this.visibility;
    this.kind = room.kind ?? this.kind;
    this.created_by = room.created_by ?? this.created_by;
    if (room.member_count !== undefined) this.member_count = room.member_count;
    if (room.role) this.role = room.role;
    if (room.notify) this.notify = room.notify;
    if (typeof room.muted === 'boolean') this.muted = room.muted;
    if (room.last_seq !== undefined) this.last_seq = Math.max(this.last_seq, room.last_seq);
    this.extra = { ...this.extra, ...room };
  }

  get lo() { return this.seqs.length ? this.seqs[0] : null; }
  get hi() { return this.seqs.length ? this.seqs[this.seqs.length - 1] : null; }

  /** Insert messages by seq; duplicates replace (so edits/deletes can update in place). */
  merge(messages) {
    let changed = false;
    for (const m of messages) {
      if (!m || typeof m.seq !== 'number') continue;
      const old = this.bySeq.get(m.seq);
      if (!old) changed = true;
      else if (sameMessage(old, m)) continue;
      this.bySeq.set(m.seq, old ? { ...old, ...m, _rev: (old._rev || 0) + 1 } : m);
      changed = true;
      if (m.seq > this.last_seq) this.last_seq = m.seq;
    }
    if (changed) this.seqs = [...this.bySeq.keys()].sort((a, b) => a - b);
    return changed;
  }

  /** Patch one held message (a `message_updated`: an edit or a deletion). */
  patch(seq, fields) {
    const old = this.bySeq.get(seq);
    if (!old) return false;
    this.bySeq.set(seq, { ...old, ...fields, _rev: (old._rev || 0) + 1 });
    return true;
  }

  messages() {
    return this.seqs.map((s) => this.bySeq.get(s));
  }

  hasClientId(userId, clientId) {
    for (let i = this.seqs.length - 1; i >= 0 && i >= this.seqs.length - 500; i--) {
      const m = this.bySeq.get(this.seqs[i]);
      if (m.client_id === clientId && m.sender && m.sender.id === userId) return true;
    }
    return false;
  }
}

function sameMessage(a, b) {
  return a.body === b.body && a.kind === b.kind && a.edited_at === b.edited_at && a.deleted === b.deleted
    && a.reply_count === b.reply_count && a.last_reply_ts === b.last_reply_ts
    && JSON.stringify(a.reactions || []) === JSON.stringify(b.reactions || [])
    && JSON.stringify(a.quote || null) === JSON.stringify(b.quote || null);
}

/** Last seen seq per room, kept in localStorage under the user's id (not secret). */
export class SeenStore {
  constructor(userId) {
    this.key = `parley.seen.${userId}`;
    try {
      this.map = JSON.parse(localStorage.getItem(this.key) || '{}') || {};
    } catch {
      this.map = {};
    }
  }
  has(roomId) { return Object.prototype.hasOwnProperty.call(this.map, roomId); }
  get(roomId) { return this.map[roomId] || 0; }
  set(roomId, seq) {
    if (this.get(roomId) >= seq && this.has(roomId)) return false;
    this.map[roomId] = seq;
    this.save();
    return true;
  }
  forget(roomId) { delete this.map[roomId]; this.save(); }
  save() {
    try { localStorage.setItem(this.key, JSON.stringify(this.map)); } catch { /* quota, private mode */ }
  }
}

/**
 * Messages written but not yet acknowledged. Each keeps its client_id for its whole life, so a
 * resend after a reconnect is recognised by the server (duplicate: true) and never stored twice.
 * Kept in sessionStorage so a reload of the tab does not lose what was typed.
 */
export class Outbox {
  constructor(userId) {
    this.key = `parley.outbox.${userId}`;
    this.items = new Map(); // client_id -> {client_id, room, body, ts, state: 'pending'|'failed', error?, ackSeq?}
    try {
      for (const it of JSON.parse(sessionStorage.getItem(this.key) || '[]')) {
        if (it && it.client_id && it.room && typeof it.body === 'string') {
          this.items.set(it.client_id, { ...it, state: it.state === 'failed' ? 'failed' : 'pending' });
        }
      }
    } catch { /* ignore */ }
  }
  add(room, body, replyTo = null) {
    const client_id = newClientId();
    const it = { client_id, room, body, ts: Date.now(), state: 'pending' };
    if (typeof replyTo === 'number') it.reply_to = replyTo;
    this.items.set(client_id, it);
    this.save();
    return it;
  }
  get(clientId) { return this.items.get(clientId); }
  delete(clientId) { if (this.items.delete(clientId)) this.save(); }
  forRoom(roomId) { return [...this.items.values()].filter((i) => i.room === roomId); }
  all() { return [...this.items.values()]; }
  save() {
    try {
      sessionStorage.setItem(this.key, JSON.stringify([...this.items.values()].filter((i) => i.ackSeq === undefined)));
    } catch { /* ignore */ }
  }
}

/** 1–64 printable ASCII characters, unique enough across tabs and reloads. */
export function newClientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return 'w-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
