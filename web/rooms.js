// Rooms held, opening one, read state, loading history, and sending (the outbox).

import { describeError } from './api.js';
import { RequestError } from './conn.js';
import { loadMembers, renderMembersPanel, renderTyping } from './panels.js';
import { displayName } from './render.js';
import { $, CATCH_UP_PAGE, PAGE, TRANSIENT, state } from './state.js';
import { RoomState } from './store.js';
import { setDrawer, toast } from './ui.js';
import { renderHeader, renderHistoryTop, renderMessages, renderRoomList, resetMessageList } from './view.js';
// ───────────────────────────── rooms ─────────────────────────────

/**
 * Add or update a room. `fromHello` marks the room views of a hello, whose unread figures are
 * the new baseline (the server's `unread`/`last_read` when it keeps read state).
 */
export function addRoom(r, { fromHello = false } = {}) {
  if (!r || typeof r.id !== 'number') return null;
  let room = state.rooms.get(r.id);
  const isNew = !room;
  if (room) room.update(r);
  else {
    room = new RoomState(r);
    state.rooms.set(r.id, room);
    // First sight of a room on this browser without server read state: what exists counts as read.
    if (!state.seen.has(r.id) && typeof r.last_read !== 'number') state.seen.set(r.id, r.last_seq || 0);
  }
  if (typeof r.last_read === 'number') state.seen.set(r.id, r.last_read);
  if (!room.role && state.me && r.created_by === state.me.id && r.kind !== 'direct') room.role = 'owner';
  if (isNew || fromHello) {
    room.resetUnread(state.seen.get(r.id), typeof r.unread === 'number' ? r.unread : undefined,
      typeof r.mentions === 'number' ? r.mentions : undefined);
  }
  return room;
}

export function removeRoom(id, { quiet = false } = {}) {
  const room = state.rooms.get(id);
  if (!room) return;
  state.rooms.delete(id);
  state.members.delete(id);
  if (state.editing?.room === id) state.editing = null;
  for (const it of state.outbox.forRoom(id)) state.outbox.delete(it.client_id);
  const item = state.roomItems.get(id);
  if (item) { item.li.remove(); state.roomItems.delete(id); }
  if (state.current === id) {
    state.current = null;
    resetMessageList();
    const next = sortedRooms()[0];
    if (next) openRoom(next.id, { focus: false });
    else { history.replaceState(null, '', location.pathname); renderHeader(); renderMessages(); }
    if (!quiet) {
      const why = room.removedBy;
      toast(why ? `${displayName(why.by)} ${why.kind === 'ban' ? 'banned you from' : 'removed you from'} ${roomLabel(room)}.`
        : `You left ${roomLabel(room)}.`);
    }
  }
  renderRoomList();
}

export function currentRoom() {
  return state.current === null ? null : state.rooms.get(state.current) || null;
}

export const isDirect = (r) => r.kind === 'direct' || r.visibility === 'direct';

export function sortedRooms(filter = (r) => !isDirect(r)) {
  return [...state.rooms.values()].filter(filter).sort((a, b) => roomLabel(a).localeCompare(roomLabel(b)));
}

export function roomLabel(room) {
  if (isDirect(room)) return room.extra.peer ? displayName(room.extra.peer) : room.name;
  return '#' + room.name;
}

export function roomFromHash() {
  const name = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  if (!name) return null;
  for (const r of state.rooms.values()) if (r.name.toLowerCase() === name.toLowerCase()) return r.id;
  return null;
}

export function lastRoomId() {
  const v = Number(localStorage.getItem(`parley.lastRoom.${state.me?.id}`));
  return state.rooms.has(v) ? v : null;
}

export function openRoom(id, { focus = true } = {}) {
  const room = state.rooms.get(id);
  if (!room) return;
  if (state.current !== id) {
    state.current = id;
    state.editing = null;
    resetMessageList();
    const seen = state.seen.get(id);
    room.unreadMarker = room.last_seq > seen ? seen : null;
    try { localStorage.setItem(`parley.lastRoom.${state.me.id}`, String(id)); } catch { /* ignore */ }
    const hash = '#' + encodeURIComponent(room.name);
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }
  if (!room.loaded) loadLatest(room);
  else if (room.stale) refreshHeld(room);
  if (state.membersOpen || isDirect(room)) loadMembers(room);
  markSeen(room);
  renderHeader();
  if (state.membersOpen) renderMembersPanel();
  renderRoomList();
  renderMessages({ toBottom: true });
  renderTyping();
  setDrawer(false);
  if (focus) $('composer-input').focus();
}

export function markSeen(room) {
  if (document.visibilityState === 'hidden' || room.id !== state.current) return;
  const upTo = room.loaded ? Math.max(room.hi ?? 0, 0) : 0;
  if (!upTo) return;
  room.readUpTo(upTo);
  if (state.seen.set(room.id, upTo)) sendReadSoon(room.id);
}

// Read state goes to the server at most once a second per room (the newest seq seen then).
export const readTimers = new Map();
export function sendReadSoon(roomId) {
  if (readTimers.has(roomId) || !state.features.has('read')) return;
  readTimers.set(roomId, setTimeout(() => {
    readTimers.delete(roomId);
    if (state.rooms.has(roomId)) optionalFrame('read', { type: 'read', room: roomId, seq: state.seen.get(roomId) });
  }, 1000));
}

/**
 * Send a frame that only newer servers know (typing, read). The first `unknown_type` answer
 * turns the feature off for this page, so older servers are asked once.
 */
export function optionalFrame(feature, frame) {
  if (!state.features.has(feature) || !state.conn?.isOpen()) return;
  state.conn.request(frame).catch((e) => {
    if (e instanceof RequestError && (e.code === 'unknown_type' || e.code === 'bad_frame')) state.features.delete(feature);
  });
}

export async function loadLatest(room) {
  if (room.loading || !state.conn?.isOpen()) return;
  room.loading = (async () => {
    try {
      const page = await state.conn.request({ type: 'history', room: room.id, limit: PAGE });
      room.merge(page.messages || []);
      room.hasOlder = !!page.has_more;
      room.loaded = true;
      pruneOutbox(room);
      if (room.hi !== null && room.last_seq > room.hi) catchUp(room);
      else if (room.hi === null) room.hasOlder = false;
    } catch (e) {
      if (!(e instanceof RequestError && TRANSIENT.has(e.code))) toast(describeError(e), 'error');
      // transient: the next hello loads it again
    } finally {
      room.loading = null;
    }
    if (room.id === state.current) {
      markSeen(room);
      renderMessages({ toBottom: true });
      renderRoomList();
      fillViewport(room);
    }
  })();
  if (room.id === state.current) renderMessages();
  return room.loading;
}

/** Fetch everything after the newest held seq, in pages of 200, until has_more is false. */
export async function catchUp(room) {
  if (!room.loaded) return;
  if (room.catchingUp) { room.catchUpAgain = true; return; }
  room.catchingUp = true;
  try {
    do {
      room.catchUpAgain = false;
      let more = true;
      while (more && state.conn?.isOpen() && state.rooms.get(room.id) === room) {
        const after = room.hi ?? 0;
        const page = await state.conn.request({ type: 'history', room: room.id, after, limit: CATCH_UP_PAGE });
        const msgs = (page.messages || []).filter((m) => m.seq > after);
        room.merge(msgs);
        more = !!page.has_more && msgs.length > 0;
        pruneOutbox(room);
        if (room.id === state.current) { markSeen(room); renderMessages(); }
      }
    } while (room.catchUpAgain && state.conn?.isOpen());
  } catch (e) {
    if (!(e instanceof RequestError && TRANSIENT.has(e.code))) console.warn('catch-up failed', e);
  } finally {
    room.catchingUp = false;
  }
  renderRoomList();
}

export async function loadOlder(room) {
  if (!room.loaded || !room.hasOlder || room.loadingOlder || room.lo === null || !state.conn?.isOpen()) return;
  room.loadingOlder = true;
  renderHistoryTop(room);
  try {
    const page = await state.conn.request({ type: 'history', room: room.id, before: room.lo, limit: PAGE });
    const msgs = (page.messages || []).filter((m) => m.seq < room.lo);
    room.merge(msgs);
    room.hasOlder = !!page.has_more && msgs.length > 0;
  } catch (e) {
    if (!(e instanceof RequestError && TRANSIENT.has(e.code))) toast(describeError(e), 'error');
  } finally {
    room.loadingOlder = false;
  }
  if (room.id === state.current) renderMessages({ keepAnchor: true });
}

/**
 * Fetch the newest held messages again (after a reconnect: edits and deletions made meanwhile
 * are not replayed). Only seqs already held are merged, so the window stays contiguous.
 */
export async function refreshHeld(room) {
  if (!room.loaded || room.hi === null || !state.conn?.isOpen()) return;
  room.stale = false;
  try {
    const page = await state.conn.request({ type: 'history', room: room.id, before: room.hi + 1, limit: CATCH_UP_PAGE });
    const lo = room.lo;
    room.merge((page.messages || []).filter((m) => m.seq >= lo && room.bySeq.has(m.seq)));
  } catch (e) {
    room.stale = true;
    return;
  }
  if (room.id === state.current) renderMessages();
}

/** Keep loading older pages while the list does not fill its box (so it can be scrolled). */
export function fillViewport(room) {
  const box = $('messages');
  if (room.id === state.current && room.hasOlder && box.scrollHeight <= box.clientHeight + 8) {
    loadOlder(room).then(() => fillViewport(room));
  }
}

// ───────────────────────────── sending ─────────────────────────────

export function sendMessage(body, replyTo = null) {
  const room = currentRoom();
  if (!room) return;
  const it = state.outbox.add(room.id, body, replyTo);
  transmit(it);
  renderMessages({ toBottom: true });
}

export function transmit(it) {
  if (!state.conn?.isOpen()) return; // stays pending; resent after the next hello
  it.state = 'pending';
  it.error = undefined;
  const frame = { type: 'send', room: it.room, body: it.body, client_id: it.client_id };
  if (typeof it.reply_to === 'number') frame.reply_to = it.reply_to;
  state.conn.request(frame)
    .catch((e) => {
      if (e instanceof RequestError && TRANSIENT.has(e.code)) return; // resent after reconnect
      it.state = 'failed';
      it.error = describeError(e);
      state.outbox.save();
      if (it.room === state.current) renderMessages();
    });
}

export function resendOutbox() {
  for (const it of state.outbox.all()) {
    if (!state.rooms.has(it.room)) { state.outbox.delete(it.client_id); continue; }
    if (it.state === 'pending' && it.ackSeq === undefined) transmit(it);
  }
}

export function pruneOutbox(room) {
  for (const it of state.outbox.forRoom(room.id)) {
    if ((it.ackSeq !== undefined && room.bySeq.has(it.ackSeq)) || room.hasClientId(state.me.id, it.client_id)) {
      state.outbox.delete(it.client_id);
    }
  }
}
