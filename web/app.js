// Parley web client: wiring of screens, rooms, messages and the connection.
//
//  api.js     REST under /api/v1 (cookie-authenticated)
//  conn.js    the WebSocket, reconnect with backoff + jitter, req/reply matching
//  store.js   rooms with contiguous message windows, outbox, seen/unread
//  render.js  renderMessage() (the one message renderer) and DOM helpers
//  app.js     this file: FRAME_HANDLERS (the one dispatch table) and the UI

import { api, describeError } from './api.js';
import { Connection, RequestError } from './conn.js';
import { RoomState, SeenStore, Outbox } from './store.js';
import { el, icon, avatar, displayName, renderMessage, renderDayDivider, reconcile, dayKey, hueFor, initials } from './render.js';

const PAGE = 50;          // first page and older pages
const CATCH_UP_PAGE = 200; // the protocol's maximum, for recovery after a reconnect
const GROUP_WINDOW_MS = 5 * 60_000;
const TRANSIENT = new Set(['closed', 'not_connected', 'timeout', 'stopped']);

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  rooms: new Map(),      // id -> RoomState
  current: null,         // open room id
  conn: null,
  seen: null,
  outbox: null,
  features: new Set(['typing', 'read']), // optional client frames; dropped when the server answers unknown_type
  presence: new Map(),   // user id -> true (online) | false, from members lists and presence frames
  members: new Map(),    // room id -> [Member], fetched when needed (members panel, direct conversations)
  membersOpen: false,    // the members panel is shown
  editing: null,         // {room, seq, draft, busy}: the message being edited in place
  listCache: new Map(),  // reconcile cache of the open room's message list
  listRoom: null,
  roomItems: new Map(),  // id -> {li, btn, name, badge}
  connState: 'stopped',
  everConnected: false,
  helloCount: 0,
};

// ───────────────────────────── boot ─────────────────────────────

async function boot() {
  wireStatic();
  try {
    const me = await api.me();
    enterApp(me);
  } catch (e) {
    showAuth(e.status && e.status !== 401 ? describeError(e) : '');
  } finally {
    $('boot').hidden = true;
  }
}

function showAuth(message = '') {
  $('app-screen').hidden = true;
  $('auth-screen').hidden = false;
  document.title = 'Parley — log in';
  const err = $('auth-error');
  err.textContent = message;
  err.hidden = !message;
  $('auth-password').value = '';
  $('auth-username').focus();
}

function enterApp(user) {
  state.me = user;
  state.seen = new SeenStore(user.id);
  state.outbox = new Outbox(user.id);
  state.rooms.clear();
  state.current = null;
  clearRoomList();
  resetMessageList();
  renderMe();
  renderHeader();
  renderRoomList();
  renderMessages();
  $('auth-screen').hidden = true;
  $('app-screen').hidden = false;
  applyDrawerMode();

  state.conn = new Connection({
    onFrame: dispatch,
    onState: onConnState,
    onSessionEnded: () => sessionEnded('Your session has ended. Please log in again.'),
    checkSession: async () => {
      try { await api.me(); return true; } catch (e) { return e.status === 401 ? false : true; }
    },
  });
  state.conn.start();
}

function sessionEnded(message) {
  teardown();
  showAuth(message);
}

function teardown() {
  state.conn?.stop();
  state.conn = null;
  state.me = null;
  state.rooms.clear();
  state.current = null;
  state.everConnected = false;
  state.helloCount = 0;
  state.members.clear();
  state.presence.clear();
  state.editing = null;
  setMembersPanel(false, { focus: false });
  clearRoomList();
  resetMessageList();
  closeAllDialogs();
  setDrawer(false);
  $('conn-banner').hidden = true;
}

// ───────────────────────────── frames ─────────────────────────────

/**
 * THE dispatch table: one entry per server frame type (docs/PROTOCOL.md §3). Unknown types are
 * ignored, as the protocol asks.
 */
const FRAME_HANDLERS = {
  hello: onHello,
  message: (f) => onMessage(f.message),
  ack: onAck,
  joined: onJoined,
  left: (f) => removeRoom(typeof f.room === 'object' ? f.room.id : f.room),
  history: () => { /* replies are consumed by their request's promise */ },
  pong: () => {},
  error: onErrorFrame,

  message_updated: (f) => onMessagePatch(f.message),                  // edit or delete: the whole message
  room_updated: onRoomUpdated,                                        // new name or topic
  typing: onTyping,                                                   // {room, user, expires_ms}
  presence: onPresence,                                               // {user, online}
  user_updated: (f) => onUserUpdated(f.user),                         // a display name changed
  read: (f) => onRead(f.room, f.seq),                                 // read state, from any device
  recovered: () => {},                                                // (catch-up uses history pages)
  ok: () => {},
};

function dispatch(frame) {
  const handler = Object.prototype.hasOwnProperty.call(FRAME_HANDLERS, frame.type) ? FRAME_HANDLERS[frame.type] : null;
  if (!handler) return;
  try {
    handler(frame);
  } catch (e) {
    console.error('frame handler failed', frame.type, e);
  }
}

function onHello(f) {
  state.everConnected = true;
  if (f.user) { state.me = { ...state.me, ...f.user }; renderMe(); }
  const rooms = Array.isArray(f.rooms) ? f.rooms : [];
  const ids = new Set(rooms.map((r) => r.id));
  for (const id of [...state.rooms.keys()]) if (!ids.has(id)) removeRoom(id, { quiet: true });
  for (const r of rooms) addRoom(r, { fromHello: true });

  if (state.current === null || !state.rooms.has(state.current)) {
    const target = roomFromHash() ?? lastRoomId() ?? sortedRooms()[0]?.id ?? null;
    if (target !== null) openRoom(target, { focus: false });
  }
  // Recover every followed room we hold messages for: after = the last seq held. Edits and
  // deletions made while away are not replayed, so held messages are refreshed too (the open
  // room now, the others when next opened).
  const reconnect = state.helloCount++ > 0;
  for (const room of state.rooms.values()) {
    if (!room.loaded) continue;
    catchUp(room);
    if (reconnect) room.stale = true;
  }
  if (reconnect) { state.members.clear(); state.presence.clear(); }
  if (currentRoom()?.stale) refreshHeld(currentRoom());
  if (state.membersOpen || (currentRoom() && isDirect(currentRoom()))) loadMembers(currentRoom());
  if (sortedRooms(isDirect).some((r) => !r.extra.peer)) refreshPeers();
  for (const r of sortedRooms(isDirect).slice(0, 30)) if (!state.members.has(r.id)) loadMembers(r, { quiet: true });
  const cur = currentRoom();
  if (cur && !cur.loaded) loadLatest(cur);
  resendOutbox();
  renderRoomList();
  renderHeader();
  renderMessages();
}

function onMessage(m) {
  if (!m || typeof m.room !== 'number') return;
  let room = state.rooms.get(m.room);
  if (!room) {
    // A room we do not know yet (joined elsewhere, `joined` not seen): learn it by REST.
    api.room(m.room).then((r) => {
      const known = addRoom(r);
      if (known && isDirect(known) && !known.extra.peer) refreshPeers();
      renderRoomList();
    }).catch(() => {});
    return;
  }
  const mine = m.sender && state.me && m.sender.id === state.me.id;
  if (mine && m.client_id) state.outbox.delete(m.client_id);
  if (room.loaded) {
    const hi = room.hi;
    if (hi === null || m.seq <= hi + 1) room.merge([m]);
    else {
      room.last_seq = Math.max(room.last_seq, m.seq);
      catchUp(room); // a gap: fetch what is missing, the page includes m
    }
  } else {
    room.last_seq = Math.max(room.last_seq, m.seq);
  }
  if (m.sender) room.typing.delete(m.sender.id);
  if (m.kind && m.kind !== 'text') onSystemMessage(room, m);
  // Our own message in a room not open here: it is not "unread".
  if (mine && state.seen.get(room.id) >= m.seq - 1) { state.seen.set(room.id, m.seq); room.readUpTo(m.seq); }
  else if (!mine && (m.kind || 'text') === 'text') room.countUnread(m.seq, state.seen.get(room.id), mentionsMe(m));
  if (room.id === state.current) {
    markSeen(room);
    renderMessages();
    renderTyping();
  }
  renderRoomList();
}

const mentionsMe = (m) => !!(state.me && Array.isArray(m.mentions) && m.mentions.includes(state.me.id));

/** What a system message changes here: our role, why we are removed, the members list. */
function onSystemMessage(room, m) {
  const aboutMe = m.target && state.me && m.target.id === state.me.id;
  if (aboutMe && m.kind === 'role' && m.body) { room.role = m.body; if (room.id === state.current) renderMessages(); }
  if (aboutMe && (m.kind === 'kick' || m.kind === 'ban')) room.removedBy = { kind: m.kind, by: m.sender };
  if (['join', 'leave', 'kick', 'ban', 'role', 'invite'].includes(m.kind) && state.members.has(room.id)) {
    loadMembersSoon(room);
  }
}

function onJoined(f) {
  const room = addRoom(f.room);
  if (room && isDirect(room) && !room.extra.peer) refreshPeers();
  renderRoomList();
}

function onRoomUpdated(f) {
  const room = addRoom(f.room);
  if (!room) return;
  if (room.id === state.current) {
    const hash = '#' + encodeURIComponent(room.name);
    if (location.hash !== hash) history.replaceState(null, '', hash);
    renderHeader();
  }
  renderRoomList();
}

/** Learn the other person of direct conversations (a `joined` frame carries a Room, not a RoomView). */
let peersLoading = null;
function refreshPeers() {
  if (peersLoading) return peersLoading;
  peersLoading = api.dms().then(({ conversations }) => {
    for (const c of conversations || []) {
      const room = state.rooms.get(c.id);
      if (room && c.peer) room.update({ peer: c.peer });
    }
    renderRoomList();
    renderHeader();
  }).catch(() => {}).finally(() => { peersLoading = null; });
  return peersLoading;
}

function onAck(f) {
  const it = f.client_id ? state.outbox.get(f.client_id) : null;
  const room = state.rooms.get(f.room);
  if (room && typeof f.seq === 'number') room.last_seq = Math.max(room.last_seq, f.seq);
  if (!it) return;
  if (!room || !room.loaded || room.bySeq.has(f.seq)) {
    state.outbox.delete(f.client_id);
  } else {
    it.ackSeq = f.seq;
    state.outbox.save();
    if (room.hi === null || f.seq > room.hi) catchUp(room);
  }
  if (f.room === state.current) renderMessages();
}

function onErrorFrame(f) {
  if (f.req) return; // answered to a request; its caller shows it
  if (f.code === 'unknown_type' || f.code === 'bad_frame') { console.warn('server:', f.code, f.message); return; }
  toast(describeError(f), 'error');
}

function onMessagePatch(m) {
  const room = m && state.rooms.get(m.room);
  if (!room) return;
  if (room.bySeq.has(m.seq)) room.patch(m.seq, m);
  const ed = state.editing;
  if (ed && ed.room === m.room && ed.seq === m.seq && m.deleted) {
    state.editing = null;
    if (room.id === state.current) toast('The message you were editing was deleted.');
  }
  if (room.id === state.current) renderMessages();
}

function onTyping(f) {
  const room = state.rooms.get(f.room);
  if (!room || !f.user || (state.me && f.user.id === state.me.id)) return;
  const ms = typeof f.expires_ms === 'number' ? f.expires_ms : 5000;
  room.typing.set(f.user.id, { user: f.user, until: Date.now() + ms });
  if (room.id === state.current) renderTyping();
}

function onPresence(f) {
  if (!f.user || typeof f.user.id !== 'number') return;
  state.presence.set(f.user.id, !!f.online);
  // Keep the cached member lists in step (name changes arrive with presence too).
  for (const list of state.members.values()) {
    const i = list.findIndex((u) => u.id === f.user.id);
    if (i >= 0) list[i] = { ...list[i], ...f.user, online: !!f.online };
  }
  if (state.membersOpen) renderMembersPanel();
  renderRoomList();
  const cur = currentRoom();
  if (cur && isDirect(cur)) renderHeader();
}

function onUserUpdated(user) {
  if (!user || typeof user.id !== 'number') return;
  if (state.me && user.id === state.me.id) { state.me = { ...state.me, ...user }; renderMe(); }
  for (const list of state.members.values()) {
    const i = list.findIndex((u) => u.id === user.id);
    if (i >= 0) list[i] = { ...list[i], ...user };
  }
  for (const room of state.rooms.values()) {
    if (room.extra.peer && room.extra.peer.id === user.id) room.update({ peer: { ...room.extra.peer, ...user } });
  }
  if (state.membersOpen) renderMembersPanel();
  renderRoomList();
  renderHeader();
}

function isOnline(user) {
  if (!user) return null;
  if (state.presence.has(user.id)) return state.presence.get(user.id);
  return typeof user.online === 'boolean' ? user.online : null;
}

function onRead(roomId, seq) {
  if (typeof seq !== 'number') return;
  state.seen.set(roomId, seq);
  state.rooms.get(roomId)?.readUpTo(seq);
  renderRoomList();
}

// ───────────────────────────── rooms ─────────────────────────────

/**
 * Add or update a room. `fromHello` marks the room views of a hello, whose unread figures are
 * the new baseline (the server's `unread`/`last_read` when it keeps read state).
 */
function addRoom(r, { fromHello = false } = {}) {
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

function removeRoom(id, { quiet = false } = {}) {
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

function currentRoom() {
  return state.current === null ? null : state.rooms.get(state.current) || null;
}

const isDirect = (r) => r.kind === 'direct' || r.visibility === 'direct';

function sortedRooms(filter = (r) => !isDirect(r)) {
  return [...state.rooms.values()].filter(filter).sort((a, b) => roomLabel(a).localeCompare(roomLabel(b)));
}

function roomLabel(room) {
  if (isDirect(room)) return room.extra.peer ? displayName(room.extra.peer) : room.name;
  return '#' + room.name;
}

function roomFromHash() {
  const name = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  if (!name) return null;
  for (const r of state.rooms.values()) if (r.name.toLowerCase() === name.toLowerCase()) return r.id;
  return null;
}

function lastRoomId() {
  const v = Number(localStorage.getItem(`parley.lastRoom.${state.me?.id}`));
  return state.rooms.has(v) ? v : null;
}

function openRoom(id, { focus = true } = {}) {
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

function markSeen(room) {
  if (document.visibilityState === 'hidden' || room.id !== state.current) return;
  const upTo = room.loaded ? Math.max(room.hi ?? 0, 0) : 0;
  if (!upTo) return;
  room.readUpTo(upTo);
  if (state.seen.set(room.id, upTo)) sendReadSoon(room.id);
}

// Read state goes to the server at most once a second per room (the newest seq seen then).
const readTimers = new Map();
function sendReadSoon(roomId) {
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
function optionalFrame(feature, frame) {
  if (!state.features.has(feature) || !state.conn?.isOpen()) return;
  state.conn.request(frame).catch((e) => {
    if (e instanceof RequestError && (e.code === 'unknown_type' || e.code === 'bad_frame')) state.features.delete(feature);
  });
}

async function loadLatest(room) {
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
async function catchUp(room) {
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

async function loadOlder(room) {
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
async function refreshHeld(room) {
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
function fillViewport(room) {
  const box = $('messages');
  if (room.id === state.current && room.hasOlder && box.scrollHeight <= box.clientHeight + 8) {
    loadOlder(room).then(() => fillViewport(room));
  }
}

// ───────────────────────────── sending ─────────────────────────────

function sendMessage(body) {
  const room = currentRoom();
  if (!room) return;
  const it = state.outbox.add(room.id, body);
  transmit(it);
  renderMessages({ toBottom: true });
}

function transmit(it) {
  if (!state.conn?.isOpen()) return; // stays pending; resent after the next hello
  it.state = 'pending';
  it.error = undefined;
  state.conn.request({ type: 'send', room: it.room, body: it.body, client_id: it.client_id })
    .catch((e) => {
      if (e instanceof RequestError && TRANSIENT.has(e.code)) return; // resent after reconnect
      it.state = 'failed';
      it.error = describeError(e);
      state.outbox.save();
      if (it.room === state.current) renderMessages();
    });
}

function resendOutbox() {
  for (const it of state.outbox.all()) {
    if (!state.rooms.has(it.room)) { state.outbox.delete(it.client_id); continue; }
    if (it.state === 'pending' && it.ackSeq === undefined) transmit(it);
  }
}

function pruneOutbox(room) {
  for (const it of state.outbox.forRoom(room.id)) {
    if ((it.ackSeq !== undefined && room.bySeq.has(it.ackSeq)) || room.hasClientId(state.me.id, it.client_id)) {
      state.outbox.delete(it.client_id);
    }
  }
}

// ───────────────────────────── rendering ─────────────────────────────

function renderMe() {
  const me = state.me;
  if (!me) return;
  $('me-display').textContent = displayName(me);
  $('me-username').textContent = '@' + me.username;
  const a = $('me-avatar');
  a.textContent = initials(displayName(me));
  a.style.setProperty('--hue', String(hueFor(me.id)));
}

function clearRoomList() {
  $('room-list').replaceChildren();
  $('dm-list').replaceChildren();
  state.roomItems.clear();
}

function unreadCount(room) {
  if (room.id === state.current && document.visibilityState !== 'hidden') return 0;
  return room.unread;
}

/** Room list: items are built once and updated in place, so keyboard focus is never lost. */
function renderRoomList() {
  const groups = [
    [$('room-list'), sortedRooms()],
    [$('dm-list'), sortedRooms(isDirect)],
  ];
  let total = 0;
  for (const [list, rooms] of groups) {
    let cursor = list.firstChild;
    for (const room of rooms) {
      let item = state.roomItems.get(room.id);
      if (!item) item = buildRoomItem(room);
      const n = unreadCount(room);
      const at = n ? room.mentions : 0;
      total += n;
      const direct = isDirect(room);
      item.name.textContent = direct ? roomLabel(room) : room.name;
      const glyph = direct ? 'dm' : room.visibility === 'private' ? 'i-lock' : 'i-hash';
      if (item.glyph.dataset.kind !== glyph) {
        item.glyph.dataset.kind = glyph;
        item.glyph.replaceChildren(direct ? el('span', { class: 'presence-dot' }) : icon(glyph, 'icon icon-sm'));
      }
      const online = direct ? isOnline(room.extra.peer) : null;
      if (direct) item.glyph.dataset.online = online === null ? 'unknown' : String(online);
      item.badge.textContent = n > 99 ? '99+' : String(n);
      item.badge.hidden = n === 0 || at === n;
      item.mention.textContent = '@' + (at > 99 ? '99+' : String(at));
      item.mention.hidden = at === 0;
      item.btn.classList.toggle('has-unread', n > 0);
      const label = `${roomLabel(room)}${room.visibility === 'private' && !direct ? ', private' : ''}`
        + `${online === true ? ', online' : ''}${n ? `, ${n} unread` : ''}${at ? `, ${at} mention${at === 1 ? '' : 's'} of you` : ''}`;
      item.btn.setAttribute('aria-label', label);
      if (room.id === state.current) item.btn.setAttribute('aria-current', 'page');
      else item.btn.removeAttribute('aria-current');
      if (item.li !== cursor) list.insertBefore(item.li, cursor);
      else cursor = cursor.nextSibling;
    }
  }
  $('room-list-empty').hidden = sortedRooms().length > 0 || !state.everConnected;
  $('dm-list-empty').hidden = sortedRooms(isDirect).length > 0 || !state.everConnected;
  $('drawer-unread').hidden = total === 0;
  const cur = currentRoom();
  document.title = `${total ? `(${total}) ` : ''}${cur ? roomLabel(cur) + ' — ' : ''}Parley`;
}

function buildRoomItem(room) {
  const glyph = el('span', { class: 'room-glyph' });
  const name = el('span', { class: 'room-name' });
  const badge = el('span', { class: 'badge', 'aria-hidden': 'true' });
  const mention = el('span', { class: 'mention-badge', 'aria-hidden': 'true', hidden: true });
  const btn = el('button', { class: 'room-btn', type: 'button', dataset: { roomId: room.id }, onclick: () => openRoom(room.id) },
    glyph, name, mention, badge);
  const li = el('li', {}, btn);
  const item = { li, btn, glyph, name, badge, mention };
  state.roomItems.set(room.id, item);
  return item;
}

function renderHeader() {
  const room = currentRoom();
  const title = $('room-title');
  const meta = $('room-meta');
  $('room-actions').hidden = !room;
  if (!room && state.membersOpen) setMembersPanel(false, { focus: false });
  if (!room) {
    title.textContent = state.rooms.size ? 'Parley' : 'Welcome to Parley';
    meta.textContent = '';
    $('messages').setAttribute('aria-label', 'Messages');
    $('composer-label').textContent = 'Message';
    return;
  }
  title.textContent = roomLabel(room);
  const direct = isDirect(room);
  const parts = [direct ? 'Direct message' : room.visibility === 'private' ? 'Private room' : 'Public room'];
  if (direct) {
    const online = isOnline(room.extra.peer);
    if (room.extra.peer) parts.push('@' + room.extra.peer.username);
    if (online !== null) parts.push(online ? 'online' : 'offline');
  } else if (typeof room.member_count === 'number') {
    parts.push(`${room.member_count} member${room.member_count === 1 ? '' : 's'}`);
  }
  const topic = room.extra.topic ? el('span', { class: 'room-topic', title: room.extra.topic, text: room.extra.topic }) : null;
  meta.replaceChildren(el('span', { class: 'room-kind', text: parts.join(' · ') }), topic ? ' · ' : '', topic || '');
  $('invite-btn').hidden = room.visibility !== 'private' || isDirect(room);
  $('leave-btn').hidden = isDirect(room);
  $('messages').setAttribute('aria-label', `Messages in ${roomLabel(room)}`);
  $('composer-label').textContent = `Message ${roomLabel(room)}`;
  $('composer-input').placeholder = `Message ${roomLabel(room)}`;
}

function resetMessageList() {
  $('message-list').replaceChildren();
  state.listCache.clear();
  state.listRoom = null;
  $('new-below')?.remove();
}

function renderHistoryTop(room) {
  const loadingFirst = !!room && !room.loaded && !!room.loading;
  $('history-loading').hidden = !(room && (room.loadingOlder || loadingFirst));
  $('older-btn').hidden = !(room && room.loaded && room.hasOlder && !room.loadingOlder);
  $('history-start').hidden = !(room && room.loaded && !room.hasOlder);
  if (room) $('history-start').textContent = isDirect(room) ? 'This is the beginning of the conversation.' : 'This is the beginning of the room.';
}

/**
 * Render the open room's messages (held + pending) into the role="log" list, keeping the
 * reader's place: stuck to the bottom when they were at the bottom, anchored when older
 * messages are put above.
 */
function renderMessages({ toBottom = false, keepAnchor = false } = {}) {
  const room = currentRoom();
  const box = $('messages');
  const input = $('composer-input');
  input.disabled = !room;
  $('send-btn').disabled = !room;
  $('empty-state').hidden = !!room;
  renderHistoryTop(room);
  if (!room) { resetMessageList(); return; }

  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  const fromBottom = box.scrollHeight - box.scrollTop;

  const items = [];
  let prev = null;
  const pushMsg = (m, pending) => {
    if (!prev || dayKey(prev.ts) !== dayKey(m.ts)) {
      const k = 'd:' + dayKey(m.ts);
      items.push({ key: k, rev: 0, build: () => renderDayDivider(m.ts) });
      prev = null;
    }
    if (!pending && room.unreadMarker != null && m.seq === room.unreadMarker + 1 && room.bySeq.has(room.unreadMarker)) {
      items.push({ key: 'new', rev: 0, build: () => el('li', { class: 'new-divider', role: 'separator' }, el('span', { text: 'New' })) });
    }
    const cont = !!(prev && m.kind === 'text' && prev.kind === 'text' && prev.sender && m.sender &&
      prev.sender.id === m.sender.id && m.ts - prev.ts < GROUP_WINDOW_MS);
    const mine = !!(m.sender && m.sender.id === state.me.id);
    const editing = !pending && state.editing && state.editing.room === room.id && state.editing.seq === m.seq ? state.editing : null;
    const canEdit = mine && !pending && !m.deleted;
    const canDelete = !pending && !m.deleted && (mine || room.moderates);
    const rev = `${m._rev || 0}|${cont}|${pending ? pending.state + (pending.error || '') : ''}|${canEdit}${canDelete}`
      + `|${editing ? 'e' + (editing.busy ? 'b' : '') + (editing.gen || 0) : ''}|${state.me.username}`;
    const key = pending ? 'p:' + pending.client_id : 's:' + m.seq;
    items.push({
      key, rev,
      build: () => renderMessage(m, {
        me: state.me, continuation: cont, pending, onRetry: retryPending, onDiscard: discardPending,
        canEdit, canDelete, editing, onEdit: startEdit, onDelete: askDelete,
        onEditSave: saveEdit, onEditCancel: cancelEdit, onEditDraft: (_m, v) => { if (state.editing) state.editing.draft = v; },
      }),
    });
    prev = m;
  };
  for (const m of room.messages()) pushMsg(m);
  for (const it of state.outbox.forRoom(room.id)) {
    if (it.ackSeq !== undefined && room.bySeq.has(it.ackSeq)) continue;
    if (room.loaded && room.hasClientId(state.me.id, it.client_id)) continue;
    pushMsg({ room: room.id, kind: 'text', sender: state.me, body: it.body, client_id: it.client_id, ts: it.ts }, it);
  }

  const list = $('message-list');
  const lastBefore = list.lastElementChild;
  reconcile(list, items, state.listCache);
  state.listRoom = room.id;

  if (toBottom || atBottom) box.scrollTop = box.scrollHeight;
  else if (keepAnchor) box.scrollTop = box.scrollHeight - fromBottom;
  else if (lastBefore && list.lastElementChild !== lastBefore) showNewBelow();
}

// ───────────────────────────── editing and deleting ─────────────────────────────

function messageItem(room, seq) {
  return $('message-list').querySelector(`li.msg-text[data-seq="${Number(seq)}"]`);
}

function startEdit(m) {
  state.editing = { room: m.room, seq: m.seq, draft: m.body, busy: false, gen: (state.editing?.gen || 0) + 1 };
  renderMessages();
  const area = messageItem(m.room, m.seq)?.querySelector('textarea');
  if (area) { area.focus(); area.setSelectionRange(area.value.length, area.value.length); }
}

function cancelEdit(m) {
  state.editing = null;
  renderMessages();
  messageItem(m.room, m.seq)?.querySelector('[data-action="edit"]')?.focus();
}

async function saveEdit(m, body) {
  const ed = state.editing;
  if (!ed || ed.busy) return;
  const room = state.rooms.get(m.room);
  const held = room?.bySeq.get(m.seq);
  if (!body.trim()) { toast('A message cannot be empty. Delete it instead.', 'error'); return; }
  if (held && body === held.body) { cancelEdit(m); return; }
  const bytes = new TextEncoder().encode(body).length;
  if (bytes > 4096) { toast(`That message is too long (${bytes} bytes; the limit is 4096).`, 'error'); return; }
  ed.busy = true;
  ed.draft = body;
  renderMessages();
  try {
    const reply = await requestOrThrow({ type: 'edit', room: m.room, seq: m.seq, body });
    if (reply?.message) onMessagePatch(reply.message);
    if (state.editing === ed) state.editing = null;
    renderMessages();
    messageItem(m.room, m.seq)?.querySelector('[data-action="edit"]')?.focus();
  } catch (e) {
    if (state.editing === ed) { ed.busy = false; ed.gen += 1; }
    renderMessages();
    toast(describeError(e), 'error');
    messageItem(m.room, m.seq)?.querySelector('textarea')?.focus();
  }
}

let deleting = null;
function askDelete(m, opener = document.activeElement) {
  deleting = { room: m.room, seq: m.seq };
  const mine = m.sender && state.me && m.sender.id === state.me.id;
  $('delete-text').textContent = mine ? 'Everyone in the room will see that a message was deleted.'
    : `You are deleting a message from ${displayName(m.sender)}. Everyone in the room will see that it was deleted.`;
  $('delete-preview').textContent = m.body.length > 280 ? m.body.slice(0, 280) + '…' : m.body;
  openDialog($('delete-dialog'), opener);
  $('delete-dialog').querySelector('button[type="submit"]').focus();
}

async function confirmDelete(form) {
  const target = deleting;
  if (!target) { closeDialog($('delete-dialog')); return; }
  busy(form, true);
  try {
    const reply = await requestOrThrow({ type: 'delete', room: target.room, seq: target.seq });
    if (reply?.message) onMessagePatch(reply.message);
    deleting = null;
    dialogOpener = $('composer-input'); // the message's buttons are gone
    closeDialog($('delete-dialog'));
  } catch (e) {
    dialogError($('delete-dialog'), e);
  } finally {
    busy(form, false);
  }
}

/** A request over the socket, with a readable error when there is no connection. */
function requestOrThrow(frame) {
  if (!state.conn?.isOpen()) return Promise.reject(new RequestError('not_connected', 'You are offline. Try again once reconnected.'));
  return state.conn.request(frame);
}

// ───────────────────────────── members panel ─────────────────────────────

const memberTimers = new Map();
function loadMembersSoon(room) {
  if (memberTimers.has(room.id)) return;
  memberTimers.set(room.id, setTimeout(() => { memberTimers.delete(room.id); loadMembers(room); }, 300));
}

async function loadMembers(room, { quiet = false } = {}) {
  if (!room) return;
  try {
    const { members } = await api.members(room.id);
    if (!state.rooms.has(room.id)) return;
    state.members.set(room.id, members);
    for (const u of members) {
      if (typeof u.online === 'boolean') state.presence.set(u.id, u.online);
      if (state.me && u.id === state.me.id && u.role) room.role = u.role;
    }
    if (!isDirect(room)) room.member_count = members.length;
  } catch (e) {
    if (!quiet && room.id === state.current && state.membersOpen) $('members-status').textContent = describeError(e);
    return;
  }
  if (room.id === state.current) {
    if (state.membersOpen) renderMembersPanel();
    renderHeader();
    renderMessages(); // delete buttons follow our role
  }
  renderRoomList();
}

function setMembersPanel(open, { focus = true } = {}) {
  const was = state.membersOpen;
  state.membersOpen = open && !!currentRoom();
  const panel = $('members-panel');
  panel.hidden = !state.membersOpen;
  $('members-backdrop').hidden = !state.membersOpen;
  document.querySelector('.app').classList.toggle('members-open', state.membersOpen);
  $('members-btn').setAttribute('aria-expanded', String(state.membersOpen));
  if (state.membersOpen) {
    renderMembersPanel();
    loadMembers(currentRoom());
    if (focus && !was) $('members-close').focus();
  } else if (was && focus && (panel.contains(document.activeElement) || document.activeElement === document.body)) {
    $('members-btn').focus();
  }
}

// Rooms of more than 500 members get no presence frames (docs/PROTOCOL.md, "Presence in big rooms"):
// while such a room's member list is shown, it is read again every 30 s for its online state.
const PRESENCE_ROOM_LIMIT = 500;
setInterval(() => {
  const room = currentRoom();
  if (state.membersOpen && room && !isDirect(room) && room.member_count > PRESENCE_ROOM_LIMIT && !document.hidden) {
    loadMembers(room, { quiet: true });
  }
}, 30_000);

const ROLE_RANK = { owner: 0, admin: 1, member: 2 };

function renderMembersPanel() {
  const room = currentRoom();
  if (!room) { setMembersPanel(false, { focus: false }); return; }
  $('members-title').textContent = isDirect(room) ? 'People' : `Members of #${room.name}`;
  const members = state.members.get(room.id);
  const status = $('members-status');
  const on = [];
  const off = [];
  for (const u of members || []) (isOnline(u) ? on : off).push(u);
  const order = (a, b) => (ROLE_RANK[a.role] ?? 3) - (ROLE_RANK[b.role] ?? 3) || displayName(a).localeCompare(displayName(b));
  on.sort(order);
  off.sort(order);
  $('online-heading').textContent = `Online — ${on.length}`;
  $('offline-heading').textContent = `Offline — ${off.length}`;
  $('online-list').replaceChildren(...on.map((u) => memberRow(u, true)));
  $('offline-list').replaceChildren(...off.map((u) => memberRow(u, false)));
  $('online-heading').hidden = !members;
  $('offline-heading').hidden = !members || off.length === 0;
  if (!members) status.textContent = 'Loading…';
  else if (status.textContent === 'Loading…') status.textContent = '';
}

function memberRow(u, online) {
  const me = state.me && u.id === state.me.id;
  const face = el('span', { class: 'member-face' }, avatar(u, 'avatar avatar-sm'), el('span', { class: 'presence-dot', 'aria-hidden': 'true' }));
  const role = u.role === 'owner' || u.role === 'admin'
    ? el('span', { class: `role-badge role-${u.role}`, text: u.role === 'owner' ? 'Owner' : 'Admin' }) : null;
  return el('li', { class: 'member', dataset: { userId: u.id, username: u.username, online: String(online) } },
    face,
    el('span', { class: 'member-info' },
      el('span', { class: 'member-name', text: displayName(u) }),
      el('span', { class: 'member-username muted', text: '@' + u.username + (me ? ' · you' : '') })),
    role,
    el('span', { class: 'visually-hidden', text: online ? ', online' : ', offline' }));
}

async function startDm(form) {
  const dlg = $('dm-dialog');
  const username = $('dm-username').value.trim().replace(/^@/, '');
  if (!username) { dialogError(dlg, 'Enter the username of the person to write to.'); return; }
  if (state.me && username.toLowerCase() === state.me.username.toLowerCase()) { dialogError(dlg, 'That is you: pick someone else.'); return; }
  busy(form, true);
  try {
    const res = await api.openDm(username);
    const room = addRoom({ ...res.room, peer: res.peer });
    if (room && res.peer) room.update({ peer: res.peer });
    closeDialog(dlg);
    if (room) openRoom(room.id);
  } catch (e) {
    dialogError(dlg, e);
  } finally {
    busy(form, false);
  }
}

function showNewBelow() {
  if ($('new-below')) return;
  const btn = el('button', { id: 'new-below', class: 'btn btn-small new-below', type: 'button', text: 'New messages ↓',
    onclick: () => { const box = $('messages'); box.scrollTop = box.scrollHeight; btn.remove(); } });
  $('chat').insertBefore(btn, $('typing'));
}

function retryPending(it) {
  it.state = 'pending';
  it.error = undefined;
  transmit(it);
  renderMessages();
}

function discardPending(it) {
  state.outbox.delete(it.client_id);
  renderMessages();
  $('composer-input').focus();
}

function renderTyping() {
  const room = currentRoom();
  const line = $('typing');
  if (!room) { line.textContent = ''; return; }
  const now = Date.now();
  const names = [];
  for (const [id, t] of room.typing) {
    if (t.until < now) room.typing.delete(id);
    else names.push(displayName(t.user));
  }
  line.textContent = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…`
    : names.length < 4 ? `${names.join(', ')} are typing…` : 'Several people are typing…';
}

function onConnState(s, info) {
  state.connState = s;
  document.documentElement.dataset.conn = s; // for styling hooks and tests
  const banner = $('conn-banner');
  const text = $('conn-text');
  if (s === 'open' || s === 'stopped') { banner.hidden = true; banner.classList.remove('banner-warn'); return; }
  if (s === 'connecting') {
    // the very first connection: say nothing unless it takes a while
    setTimeout(() => { if (state.connState === 'connecting') { text.textContent = 'Connecting…'; banner.hidden = false; } }, 1500);
    return;
  }
  const offline = navigator.onLine === false;
  const slow = info.lastClose && info.lastClose.code === 4008;
  const shutdown = info.lastClose && info.lastClose.code === 1001;
  text.textContent = offline ? 'You are offline. Reconnecting when the network is back…'
    : shutdown ? 'The server is restarting. Reconnecting…'
    : slow ? 'Connection fell behind. Reconnecting…'
    : 'Connection lost. Reconnecting…';
  banner.hidden = false;
  banner.classList.add('banner-warn');
}

// ───────────────────────────── toasts ─────────────────────────────

function toast(message, kind = 'info') {
  const t = el('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : null },
    el('span', { text: message }),
    el('button', { class: 'icon-btn icon-btn-sm', type: 'button', 'aria-label': 'Dismiss', onclick: () => t.remove() }, icon('i-close', 'icon icon-sm')));
  $('toasts').append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 5000);
}

// ───────────────────────────── dialogs ─────────────────────────────

let dialogOpener = null;

function openDialog(dlg, opener = document.activeElement) {
  for (const p of dlg.querySelectorAll('.form-error, .form-ok')) { p.hidden = true; p.textContent = ''; }
  dialogOpener = opener;
  dlg.showModal();
}

function closeDialog(dlg) {
  if (dlg.open) dlg.close();
}

function closeAllDialogs() {
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
}

function dialogError(dlg, err) {
  if (err && err.status === 401) { sessionEnded(describeError(err)); return; }
  const p = dlg.querySelector('.form-error');
  p.textContent = typeof err === 'string' ? err : describeError(err);
  p.hidden = false;
}

function busy(form, on) {
  for (const b of form.querySelectorAll('button')) b.disabled = on;
  form.setAttribute('aria-busy', on ? 'true' : 'false');
}

// ───────────────────────────── drawer (phone widths) ─────────────────────────────

const narrow = matchMedia('(max-width: 767px)');

function applyDrawerMode() {
  const open = document.querySelector('.app').classList.contains('drawer-open');
  const sidebar = $('sidebar');
  if (narrow.matches) {
    sidebar.inert = !open;
    $('chat').inert = open;
  } else {
    sidebar.inert = false;
    $('chat').inert = false;
  }
}

function setDrawer(open) {
  const app = document.querySelector('.app');
  const was = app.classList.contains('drawer-open');
  if (!narrow.matches) open = false;
  app.classList.toggle('drawer-open', open);
  $('drawer-backdrop').hidden = !open;
  $('drawer-open').setAttribute('aria-expanded', String(open));
  applyDrawerMode();
  if (open && !was) ($('sidebar').querySelector('[aria-current="page"]') || $('create-btn')).focus();
  if (!open && was && $('sidebar').contains(document.activeElement)) $('drawer-open').focus();
}

// ───────────────────────────── static wiring ─────────────────────────────

function wireStatic() {
  // login / register
  $('auth-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const action = ev.submitter?.value || 'login';
    const username = $('auth-username').value.trim();
    const password = $('auth-password').value;
    const err = $('auth-error');
    err.hidden = true;
    if (!username || !password) {
      err.textContent = 'Enter a username and a password.';
      err.hidden = false;
      return;
    }
    busy(form, true);
    try {
      if (action === 'register') await api.register(username, password);
      const res = await api.login(username, password);
      $('auth-password').value = '';
      enterApp(res.user);
    } catch (e) {
      err.textContent = describeError(e);
      err.hidden = false;
    } finally {
      busy(form, false);
    }
  });

  // composer: Enter sends, Shift+Enter new line
  const input = $('composer-input');
  const autosize = () => {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 200) + 'px';
  };
  input.addEventListener('input', () => { autosize(); maybeSendTyping(); });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body = input.value;
    if (!body.trim()) return;
    const bytes = new TextEncoder().encode(body).length;
    if (bytes > 4096) { toast(`That message is too long (${bytes} bytes; the limit is 4096).`, 'error'); return; }
    sendMessage(body);
    input.value = '';
    autosize();
  });

  // message list: older history on scroll to the top, or with the button
  const box = $('messages');
  let stuckToBottom = true;
  box.addEventListener('scroll', () => {
    const room = currentRoom();
    if (room && box.scrollTop < 120) loadOlder(room);
    stuckToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    if (stuckToBottom) $('new-below')?.remove();
  }, { passive: true });
  // A reader at the bottom stays there when the box or its content changes size (rotation,
  // window resize, the composer growing).
  const keepBottom = new ResizeObserver(() => { if (stuckToBottom) box.scrollTop = box.scrollHeight; });
  keepBottom.observe(box);
  keepBottom.observe($('message-list'));
  $('older-btn').addEventListener('click', () => { const r = currentRoom(); if (r) loadOlder(r); });

  $('conn-retry').addEventListener('click', () => state.conn?.retryNow());

  // sidebar actions
  $('create-btn').addEventListener('click', (ev) => {
    $('create-form').reset();
    openDialog($('create-dialog'), ev.currentTarget);
    $('create-name').focus();
  });
  $('browse-btn').addEventListener('click', (ev) => { openBrowse(ev.currentTarget); });
  $('profile-btn').addEventListener('click', (ev) => {
    $('profile-name').value = state.me ? displayName(state.me) : '';
    openDialog($('profile-dialog'), ev.currentTarget);
    $('profile-name').select();
  });
  $('logout-btn').addEventListener('click', async () => {
    try { await api.logout(); } catch { /* the session may be gone already */ }
    try { sessionStorage.removeItem(`parley.outbox.${state.me?.id}`); } catch { /* ignore */ }
    teardown();
    showAuth('You have logged out.');
  });

  // room header actions
  $('members-btn').addEventListener('click', () => setMembersPanel(!state.membersOpen));
  $('members-close').addEventListener('click', () => setMembersPanel(false));
  $('members-backdrop').addEventListener('click', () => setMembersPanel(false));
  $('members-panel').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.stopPropagation(); setMembersPanel(false); }
  });
  $('dm-btn').addEventListener('click', (ev) => {
    $('dm-form').reset();
    openDialog($('dm-dialog'), ev.currentTarget);
    $('dm-username').focus();
  });
  $('dm-form').addEventListener('submit', (ev) => { ev.preventDefault(); startDm(ev.currentTarget); });
  $('delete-form').addEventListener('submit', (ev) => { ev.preventDefault(); confirmDelete(ev.currentTarget); });
  $('invite-btn').addEventListener('click', (ev) => {
    $('invite-form').reset();
    $('invite-title').textContent = `Invite someone to ${roomLabel(currentRoom())}`;
    openDialog($('invite-dialog'), ev.currentTarget);
    $('invite-username').focus();
  });
  $('leave-btn').addEventListener('click', (ev) => {
    const room = currentRoom();
    if (!room) return;
    $('leave-title').textContent = `Leave ${roomLabel(room)}?`;
    $('leave-text').textContent = room.visibility === 'private'
      ? 'It is private: to come back, someone will have to invite you again.'
      : 'You can join it again from Browse rooms.';
    openDialog($('leave-dialog'), ev.currentTarget);
  });

  // dialogs
  for (const dlg of document.querySelectorAll('dialog')) {
    dlg.addEventListener('close', () => {
      const back = dialogOpener;
      dialogOpener = null;
      if (back && back.isConnected && !back.closest('[inert]')) back.focus();
    });
    dlg.addEventListener('click', (ev) => {
      if (ev.target.closest('[data-close]')) closeDialog(dlg);
      else if (ev.target === dlg) closeDialog(dlg); // click on the backdrop
    });
  }

  $('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const name = $('create-name').value.trim();
    const visibility = form.querySelector('input[name="visibility"]:checked')?.value || 'public';
    if (!name) { dialogError($('create-dialog'), 'Give the room a name.'); return; }
    busy(form, true);
    try {
      const room = await api.createRoom(name, visibility);
      addRoom(room);
      closeDialog($('create-dialog'));
      openRoom(room.id);
    } catch (e) {
      dialogError($('create-dialog'), e);
    } finally {
      busy(form, false);
    }
  });

  $('join-name-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = $('join-name').value.trim();
    if (name) await joinRoom(name, ev.currentTarget);
  });

  $('invite-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const room = currentRoom();
    const username = $('invite-username').value.trim();
    if (!room || !username) return;
    busy(form, true);
    const ok = form.querySelector('.form-ok');
    try {
      await api.invite(room.id, username);
      form.querySelector('.form-error').hidden = true;
      ok.textContent = `Invited ${username}. They can now join ${roomLabel(room)} by its name.`;
      ok.hidden = false;
      $('invite-username').value = '';
    } catch (e) {
      ok.hidden = true;
      dialogError($('invite-dialog'), e);
    } finally {
      busy(form, false);
    }
  });

  $('profile-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const name = $('profile-name').value.trim();
    if (!name) { dialogError($('profile-dialog'), 'Display names cannot be empty.'); return; }
    busy(form, true);
    try {
      const user = await api.updateMe(name);
      state.me = { ...state.me, ...user };
      renderMe();
      closeDialog($('profile-dialog'));
      toast('Display name updated.');
    } catch (e) {
      dialogError($('profile-dialog'), e);
    } finally {
      busy(form, false);
    }
  });

  $('leave-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const room = currentRoom();
    if (!room) { closeDialog($('leave-dialog')); return; }
    busy(form, true);
    try {
      await api.leave(room.id);
      closeDialog($('leave-dialog'));
      removeRoom(room.id);
    } catch (e) {
      dialogError($('leave-dialog'), e);
    } finally {
      busy(form, false);
    }
  });

  // drawer
  $('drawer-open').addEventListener('click', () => setDrawer(true));
  $('drawer-close').addEventListener('click', () => setDrawer(false));
  $('drawer-backdrop').addEventListener('click', () => setDrawer(false));
  narrow.addEventListener('change', () => setDrawer(false));
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.querySelector('.app.drawer-open') && !document.querySelector('dialog[open]')) {
      setDrawer(false);
    }
  });

  addEventListener('hashchange', () => {
    const id = roomFromHash();
    if (id !== null && id !== state.current) openRoom(id, { focus: false });
  });
  document.addEventListener('visibilitychange', () => {
    const room = currentRoom();
    if (room && document.visibilityState === 'visible') { markSeen(room); renderRoomList(); }
  });
  setInterval(() => { if (currentRoom()?.typing.size) renderTyping(); }, 2000);
}

let lastTypingSent = 0;
function maybeSendTyping() {
  if (state.current === null || !$('composer-input').value.trim()) return;
  const now = Date.now();
  if (now - lastTypingSent < 3000) return;
  lastTypingSent = now;
  optionalFrame('typing', { type: 'typing', room: state.current });
}

async function openBrowse(opener) {
  const dlg = $('browse-dialog');
  $('join-name').value = '';
  openDialog(dlg, opener);
  const list = $('public-list');
  list.replaceChildren(el('li', { class: 'muted small', text: 'Loading…' }));
  $('public-empty').hidden = true;
  try {
    const { rooms } = await api.publicRooms();
    list.replaceChildren();
    for (const r of rooms.sort((a, b) => a.name.localeCompare(b.name))) {
      const member = state.rooms.has(r.id);
      const info = el('span', { class: 'pick-info' },
        el('span', { class: 'pick-name', text: '#' + r.name }),
        el('span', { class: 'muted small', text: `${r.member_count ?? '?'} member${r.member_count === 1 ? '' : 's'}` }));
      const btn = member
        ? el('button', { class: 'btn btn-small', type: 'button', text: 'Open', 'aria-label': `Open #${r.name}`, onclick: () => { closeDialog(dlg); openRoom(r.id); } })
        : el('button', { class: 'btn btn-small btn-primary', type: 'button', text: 'Join', 'aria-label': `Join #${r.name}`, onclick: (e) => joinRoom(r.id, e.currentTarget) });
      list.append(el('li', { class: 'pick-item' }, info, btn));
    }
    $('public-empty').hidden = rooms.length > 0;
  } catch (e) {
    list.replaceChildren();
    dialogError(dlg, e);
  }
}

async function joinRoom(ref, control) {
  const dlg = $('browse-dialog');
  if (control) control.disabled = true;
  try {
    const room = await api.join(ref);
    addRoom(room);
    closeDialog(dlg);
    openRoom(room.id);
  } catch (e) {
    dialogError(dlg, e);
  } finally {
    if (control) control.disabled = false;
  }
}

boot();
