// Keyboard paths: the room switcher (Ctrl+K), Alt+↑/↓ between rooms, ↑ in an empty composer to
// edit one's last message, and "jump to first unread". (Esc closes dialogs natively; the message
// toolbars' arrow keys live in render.js.)

import { el } from './render.js';
import { currentRoom, isDirect, loadOlder, openRoom, roomLabel, sortedRooms } from './rooms.js';
import { $, state } from './state.js';
import { closeDialog, openDialog } from './ui.js';
import { renderMessages, startEdit } from './view.js';

/** Rooms in sidebar order: group rooms, then direct conversations. */
function roomOrder() {
  return [...sortedRooms(), ...sortedRooms(isDirect)];
}

/** Open the room `step` places away from the current one in sidebar order (wrapping). */
export function stepRoom(step) {
  const rooms = roomOrder();
  if (!rooms.length) return;
  const i = rooms.findIndex((r) => r.id === state.current);
  const next = rooms[(i + step + rooms.length) % rooms.length];
  openRoom(next.id);
}

let picks = [];
let active = 0;

function renderSwitcher() {
  const q = $('switcher-input').value.trim().toLowerCase().replace(/^[#@]/, '');
  picks = roomOrder().filter((r) => !q || roomLabel(r).toLowerCase().includes(q) || r.name.toLowerCase().includes(q)
    || (r.extra.peer && r.extra.peer.username.toLowerCase().includes(q)));
  active = Math.min(active, Math.max(0, picks.length - 1));
  $('switcher-list').replaceChildren(...picks.map((r, i) => el('li', {
    id: `switch-${r.id}`, class: 'pick-item switch-item', role: 'option', 'aria-selected': String(i === active),
    text: roomLabel(r) + (r.unread ? ` (${r.unread} unread)` : ''),
    onclick: () => choose(i),
  })));
  const input = $('switcher-input');
  if (picks.length) input.setAttribute('aria-activedescendant', `switch-${picks[active].id}`);
  else input.removeAttribute('aria-activedescendant');
}

function choose(i) {
  const r = picks[i];
  if (!r) return;
  state.dialogOpener = null; // focus goes to the composer of the room opened
  closeDialog($('switcher-dialog'));
  openRoom(r.id);
}

export function openSwitcher() {
  if (!state.me || document.querySelector('dialog[open]')) return;
  $('switcher-input').value = '';
  active = 0;
  renderSwitcher();
  openDialog($('switcher-dialog'));
  $('switcher-input').focus();
}

/** ↑ in the empty composer: edit the newest message of one's own that can still be edited. */
function editLast() {
  const room = currentRoom();
  if (!room || !state.me) return false;
  const mine = [...room.messages()].reverse().find((m) => m.kind === 'text' && !m.deleted && m.sender?.id === state.me.id);
  if (!mine) return false;
  startEdit(mine);
  return true;
}

/** Load older pages until the first unread message is held, then show it. */
async function jumpToFirstUnread() {
  const room = currentRoom();
  if (!room || room.unreadMarker == null) return;
  const want = room.unreadMarker + 1;
  $('jump-unread').disabled = true;
  try {
    while (room.lo !== null && room.lo > want && room.hasOlder && state.conn?.isOpen()) {
      const before = room.lo;
      await loadOlder(room);
      if (room.lo === before) break;
    }
  } finally {
    $('jump-unread').disabled = false;
  }
  renderMessages({ keepAnchor: true });
  const divider = $('new-divider');
  if (divider) { divider.scrollIntoView({ block: 'center' }); $('messages').focus(); }
}

export function wireKeys() {
  document.addEventListener('keydown', (ev) => {
    if ($('app-screen').hidden) return;
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && ev.key.toLowerCase() === 'k') {
      ev.preventDefault();
      openSwitcher();
    } else if (ev.altKey && !ev.ctrlKey && (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') && !document.querySelector('dialog[open]')) {
      ev.preventDefault();
      stepRoom(ev.key === 'ArrowUp' ? -1 : 1);
    }
  });
  $('composer-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowUp' && !ev.altKey && !ev.ctrlKey && !ev.shiftKey && ev.currentTarget.value === '' && editLast()) {
      ev.preventDefault();
    }
  });
  $('switcher-input').addEventListener('input', () => { active = 0; renderSwitcher(); });
  $('switcher-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      if (picks.length) active = (active + (ev.key === 'ArrowDown' ? 1 : -1) + picks.length) % picks.length;
      renderSwitcher();
    } else if (ev.key === 'Enter') {
      ev.preventDefault();
      choose(active);
    }
  });
  $('jump-unread').addEventListener('click', jumpToFirstUnread);
}
