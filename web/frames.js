// FRAME_HANDLERS (the one dispatch table of server frames) and what each frame changes.

import { api, describeError } from './api.js';
import { maybeNotify, onNotify, onPinMessage, onReactions, onThreadUpdated } from './convo.js';
import { loadInvites, onInvited, renderInvites } from './invites.js';
import { loadMembers, loadMembersSoon, renderMembersPanel, renderTyping } from './panels.js';
import { addRoom, catchUp, currentRoom, isDirect, lastRoomId, loadLatest, markSeen, openRoom, refreshHeld, removeRoom, resendOutbox, roomFromHash, sortedRooms } from './rooms.js';
import { state } from './state.js';
import { toast } from './ui.js';
import { renderHeader, renderMe, renderMessages, renderRoomList } from './view.js';
// ───────────────────────────── frames ─────────────────────────────

/**
 * THE dispatch table: one entry per server frame type (docs/PROTOCOL.md §3). Unknown types are
 * ignored, as the protocol asks.
 */
export const FRAME_HANDLERS = {
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
  invited: onInvited,                                                 // {room, invited_by, at}
  reactions: onReactions,                                             // {room, seq, reactions}: a message's reactions
  thread_updated: onThreadUpdated,                                    // {room, seq, reply_count, last_reply_ts}
  notify: onNotify,                                                   // {room, notify, muted}: from any device
  thread: () => { /* replies to `thread` requests */ },
  pins: () => { /* replies to `pins` requests */ },
};

export function dispatch(frame) {
  const handler = Object.prototype.hasOwnProperty.call(FRAME_HANDLERS, frame.type) ? FRAME_HANDLERS[frame.type] : null;
  if (!handler) return;
  try {
    handler(frame);
  } catch (e) {
    console.error('frame handler failed', frame.type, e);
  }
}

export function onHello(f) {
  state.everConnected = true;
  if (f.user) { state.me = { ...state.me, ...f.user }; renderMe(); }
  const rooms = Array.isArray(f.rooms) ? f.rooms : [];
  const ids = new Set(rooms.map((r) => r.id));
  for (const id of [...state.rooms.keys()]) if (!ids.has(id)) removeRoom(id, { quiet: true });
  for (const r of rooms) addRoom(r, { fromHello: true });

  if (state.current === null || !state.rooms.has(state.current)) {
    const target = roomFromHash() ?? lastRoomId() ?? sortedRooms()[0]?.id ?? null;
    const idle = !document.activeElement || document.activeElement === document.body;
    if (target !== null) openRoom(target, { focus: idle && !document.querySelector('dialog[open]') });
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
  loadInvites();
  renderRoomList();
  renderHeader();
  renderMessages();
}

export function onMessage(m) {
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
  const fresh = m.seq > room.last_seq; // a new event (not one held again): it changes the member count
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
  if (m.kind && m.kind !== 'text') onSystemMessage(room, m, fresh);
  // Our own message in a room not open here: it is not "unread".
  if (mine && state.seen.get(room.id) >= m.seq - 1) { state.seen.set(room.id, m.seq); room.readUpTo(m.seq); }
  else if (!mine && (m.kind || 'text') === 'text') {
    room.countUnread(m.seq, state.seen.get(room.id), mentionsMe(m));
    if (fresh) maybeNotify(room, m, mentionsMe(m));
  }
  if (m.kind === 'pin' || m.kind === 'unpin') onPinMessage(room);
  if (room.id === state.current) {
    markSeen(room);
    renderMessages();
    renderTyping();
  }
  renderRoomList();
}

export const mentionsMe = (m) => !!(state.me && Array.isArray(m.mentions) && m.mentions.includes(state.me.id));

/** What a system message changes here: our role, why we are removed, the members list. */
export function onSystemMessage(room, m, fresh) {
  if (fresh && !isDirect(room) && typeof room.member_count === 'number') {
    const delta = m.kind === 'join' ? 1 : ['leave', 'kick', 'ban'].includes(m.kind) ? -1 : 0;
    if (delta) { room.member_count = Math.max(0, room.member_count + delta); if (room.id === state.current) renderHeader(); }
  }
  const aboutMe = m.target && state.me && m.target.id === state.me.id;
  if (aboutMe && m.kind === 'role' && m.body) { room.role = m.body; if (room.id === state.current) renderMessages(); }
  if (aboutMe && (m.kind === 'kick' || m.kind === 'ban')) room.removedBy = { kind: m.kind, by: m.sender };
  if (['join', 'leave', 'kick', 'ban', 'role', 'invite'].includes(m.kind) && state.members.has(room.id)) {
    loadMembersSoon(room);
  }
}

export function onJoined(f) {
  const room = addRoom(f.room);
  if (state.invites.delete(f.room?.id)) renderInvites();
  if (room && isDirect(room) && !room.extra.peer) refreshPeers();
  renderRoomList();
}

export function onRoomUpdated(f) {
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
export let peersLoading = null;
export function refreshPeers() {
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

export function onAck(f) {
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

export function onErrorFrame(f) {
  if (f.req) return; // answered to a request; its caller shows it
  if (f.code === 'unknown_type' || f.code === 'bad_frame') { console.warn('server:', f.code, f.message); return; }
  toast(describeError(f), 'error');
}

export function onMessagePatch(m) {
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

export function onTyping(f) {
  const room = state.rooms.get(f.room);
  if (!room || !f.user || (state.me && f.user.id === state.me.id)) return;
  const ms = typeof f.expires_ms === 'number' ? f.expires_ms : 5000;
  room.typing.set(f.user.id, { user: f.user, until: Date.now() + ms });
  if (room.id === state.current) renderTyping();
}

export function onPresence(f) {
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

export function onUserUpdated(user) {
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

export function isOnline(user) {
  if (!user) return null;
  if (state.presence.has(user.id)) return state.presence.get(user.id);
  return typeof user.online === 'boolean' ? user.online : null;
}

export function onRead(roomId, seq) {
  if (typeof seq !== 'number') return;
  state.seen.set(roomId, seq);
  state.rooms.get(roomId)?.readUpTo(seq);
  renderRoomList();
}
