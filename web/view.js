// Rendering: room list, header, the message list; editing and deleting messages.

import { describeError } from './api.js';
import { badgeCounts, isPinned, loadPins, openThread, pickReaction, renderReplyBar, setConvoPanel, setFaviconBadge, setPinned, startReply, toggleReaction, jumpTo } from './convo.js';
import { RequestError } from './conn.js';
import { isOnline, onMessagePatch } from './frames.js';
import { discardPending, retryPending, setMembersPanel, showNewBelow } from './panels.js';
import { dayKey, displayName, el, hueFor, icon, initials, reconcile, renderDayDivider, renderMessage } from './render.js';
import { currentRoom, isDirect, openRoom, roomLabel, sortedRooms } from './rooms.js';
import { $, GROUP_WINDOW_MS, state, tooLong } from './state.js';
import { busy, closeDialog, dialogError, openDialog, toast } from './ui.js';
// ───────────────────────────── rendering ─────────────────────────────

export function renderMe() {
  const me = state.me;
  if (!me) return;
  $('me-display').textContent = displayName(me);
  $('me-username').textContent = '@' + me.username;
  const a = $('me-avatar');
  a.textContent = initials(displayName(me));
  a.style.setProperty('--hue', String(hueFor(me.id)));
}

export function clearRoomList() {
  $('room-list').replaceChildren();
  $('dm-list').replaceChildren();
  state.roomItems.clear();
}

export function unreadCount(room) {
  if (room.id === state.current && document.visibilityState !== 'hidden') return 0;
  return room.unread;
}

/** Room list: items are built once and updated in place, so keyboard focus is never lost. */
export function renderRoomList() {
  const groups = [
    [$('room-list'), sortedRooms()],
    [$('dm-list'), sortedRooms(isDirect)],
  ];
  let total = 0;
  let mentionTotal = 0;
  for (const [list, rooms] of groups) {
    let cursor = list.firstChild;
    for (const room of rooms) {
      let item = state.roomItems.get(room.id);
      if (!item) item = buildRoomItem(room);
      const { unread: n, mentions: at } = badgeCounts(room, unreadCount(room));
      total += Math.max(n, at);
      mentionTotal += at;
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
      item.btn.dataset.notify = room.muted ? 'muted' : room.notify;
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
  setFaviconBadge(mentionTotal);
}

export function buildRoomItem(room) {
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

export function renderHeader() {
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
  $('settings-btn').hidden = false;
  if (state.convo && state.convo.room !== room.id) setConvoPanel(false);
  renderReplyBar();
  $('messages').setAttribute('aria-label', `Messages in ${roomLabel(room)}`);
  $('composer-label').textContent = `Message ${roomLabel(room)}`;
  $('composer-input').placeholder = `Message ${roomLabel(room)}`;
}

export function resetMessageList() {
  $('message-list').replaceChildren();
  state.listCache.clear();
  state.listRoom = null;
  $('new-below')?.remove();
}

export function renderHistoryTop(room) {
  const loadingFirst = !!room && !room.loaded && !!room.loading;
  $('history-loading').hidden = !(room && (room.loadingOlder || loadingFirst));
  $('older-btn').hidden = !(room && room.loaded && room.hasOlder && !room.loadingOlder);
  $('history-start').hidden = !(room && room.loaded && !room.hasOlder);
  $('jump-unread').hidden = !(room && room.loaded && room.unreadMarker != null && room.lo !== null && room.lo > room.unreadMarker + 1);
  if (room) $('history-start').textContent = isDirect(room) ? 'This is the beginning of the conversation.' : 'This is the beginning of the room.';
}

/**
 * Render the open room's messages (held + pending) into the role="log" list, keeping the
 * reader's place: stuck to the bottom when they were at the bottom, anchored when older
 * messages are put above.
 */
export function renderMessages({ toBottom = false, keepAnchor = false } = {}) {
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
    if (!pending && room.unreadMarker != null && m.seq === room.unreadMarker + 1) {
      items.push({ key: 'new', rev: 0, build: () => el('li', { id: 'new-divider', class: 'new-divider' }, el('span', { text: 'New messages' })) });
    }
    const cont = !!(prev && m.kind === 'text' && prev.kind === 'text' && prev.sender && m.sender &&
      prev.sender.id === m.sender.id && m.ts - prev.ts < GROUP_WINDOW_MS);
    const mine = !!(m.sender && m.sender.id === state.me.id);
    const editing = !pending && state.editing && state.editing.room === room.id && state.editing.seq === m.seq ? state.editing : null;
    const canEdit = mine && !pending && !m.deleted;
    const canDelete = !pending && !m.deleted && (mine || room.moderates);
    const stored = !pending && !m.deleted && (m.kind || 'text') === 'text';
    const pinned = isPinned(room, m.seq);
    const rev = `${m._rev || 0}|${pinned}|${cont}|${pending ? pending.state + (pending.error || '') : ''}|${canEdit}${canDelete}`
      + `|${editing ? 'e' + (editing.busy ? 'b' : '') + (editing.gen || 0) : ''}|${state.me.username}`;
    const key = pending ? 'p:' + pending.client_id : 's:' + m.seq;
    items.push({
      key, rev,
      build: () => renderMessage(m, {
        me: state.me, continuation: cont, pending, onRetry: retryPending, onDiscard: discardPending,
        canEdit, canDelete, editing, onEdit: startEdit, onDelete: askDelete,
        canReply: stored, canReact: stored, canPin: stored && room.moderates, pinned,
        onReply: startReply, onPickReaction: pickReaction, onToggleReaction: toggleReaction, onPin: setPinned,
        onThread: openThread, onJump: jumpTo,
        onEditSave: saveEdit, onEditCancel: cancelEdit, onEditDraft: (_m, v) => { if (state.editing) state.editing.draft = v; },
      }),
    });
    prev = m;
  };
  if (room.moderates && room.pins === null && !room.pinsLoading && state.conn?.isOpen()) loadPins(room);
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

export function messageItem(room, seq) {
  return $('message-list').querySelector(`li.msg-text[data-seq="${Number(seq)}"]`);
}

export function startEdit(m) {
  state.editing = { room: m.room, seq: m.seq, draft: m.body, busy: false, gen: (state.editing?.gen || 0) + 1 };
  renderMessages();
  const area = messageItem(m.room, m.seq)?.querySelector('textarea');
  if (area) { area.focus(); area.setSelectionRange(area.value.length, area.value.length); }
}

export function cancelEdit(m) {
  state.editing = null;
  renderMessages();
  messageItem(m.room, m.seq)?.querySelector('[data-action="edit"]')?.focus();
}

export async function saveEdit(m, body) {
  const ed = state.editing;
  if (!ed || ed.busy) return;
  const room = state.rooms.get(m.room);
  const held = room?.bySeq.get(m.seq);
  if (!body.trim()) { toast('A message cannot be empty. Delete it instead.', 'error'); return; }
  if (held && body === held.body) { cancelEdit(m); return; }
  const long = tooLong(body);
  if (long) { toast(long, 'error'); return; }
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

export let deleting = null;
export function askDelete(m, opener = document.activeElement) {
  deleting = { room: m.room, seq: m.seq };
  const mine = m.sender && state.me && m.sender.id === state.me.id;
  $('delete-text').textContent = mine ? 'Everyone in the room will see that a message was deleted.'
    : `You are deleting a message from ${displayName(m.sender)}. Everyone in the room will see that it was deleted.`;
  $('delete-preview').textContent = m.body.length > 280 ? m.body.slice(0, 280) + '…' : m.body;
  openDialog($('delete-dialog'), opener);
  $('delete-dialog').querySelector('button[type="submit"]').focus();
}

export async function confirmDelete(form) {
  const target = deleting;
  if (!target) { closeDialog($('delete-dialog')); return; }
  busy(form, true);
  try {
    const reply = await requestOrThrow({ type: 'delete', room: target.room, seq: target.seq });
    if (reply?.message) onMessagePatch(reply.message);
    deleting = null;
    state.dialogOpener = $('composer-input'); // the message's buttons are gone
    closeDialog($('delete-dialog'));
  } catch (e) {
    dialogError($('delete-dialog'), e);
  } finally {
    busy(form, false);
  }
}

/** A request over the socket, with a readable error when there is no connection. */
export function requestOrThrow(frame) {
  if (!state.conn?.isOpen()) return Promise.reject(new RequestError('not_connected', 'You are offline. Try again once reconnected.'));
  return state.conn.request(frame);
}
