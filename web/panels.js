// The members panel, direct conversations, typing line and connection banner.

import { api, describeError } from './api.js';

import { isOnline } from './frames.js';
import { allowedActions, openMemberDialog } from './moderation.js';
import { avatar, displayName, el } from './render.js';
import { addRoom, currentRoom, isDirect, openRoom, transmit } from './rooms.js';
import { $, state } from './state.js';
import { busy, closeDialog, dialogError } from './ui.js';
import { renderHeader, renderMessages, renderRoomList } from './view.js';
// ───────────────────────────── members panel ─────────────────────────────

export const memberTimers = new Map();
export function loadMembersSoon(room) {
  if (memberTimers.has(room.id)) return;
  memberTimers.set(room.id, setTimeout(() => { memberTimers.delete(room.id); loadMembers(room); }, 300));
}

export async function loadMembers(room, { quiet = false } = {}) {
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

export function setMembersPanel(open, { focus = true } = {}) {
  const was = state.membersOpen;
  state.membersOpen = open && !!currentRoom();
  if (state.membersOpen && !$('convo-panel').hidden) { $('convo-panel').hidden = true; state.convo = null; }
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

export const ROLE_RANK = { owner: 0, admin: 1, member: 2 };

export function renderMembersPanel() {
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

export function memberRow(u, online) {
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
    el('span', { class: 'visually-hidden', text: online ? ', online' : ', offline' }),
    allowedActions(currentRoom(), u).length
      ? el('button', { class: 'btn btn-small member-manage', type: 'button', text: 'Manage', 'aria-label': `Manage ${displayName(u)}`,
        onclick: (ev) => openMemberDialog(u, ev.currentTarget) })
      : null);
}

export async function startDm(form) {
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

export function showNewBelow() {
  if ($('new-below')) return;
  const btn = el('button', { id: 'new-below', class: 'btn btn-small new-below', type: 'button', text: 'New messages ↓',
    onclick: () => { const box = $('messages'); box.scrollTop = box.scrollHeight; btn.remove(); } });
  $('chat').insertBefore(btn, $('typing'));
}

export function retryPending(it) {
  it.state = 'pending';
  it.error = undefined;
  transmit(it);
  renderMessages();
}

export function discardPending(it) {
  state.outbox.delete(it.client_id);
  renderMessages();
  $('composer-input').focus();
}

export function renderTyping() {
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

export function onConnState(s, info) {
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
