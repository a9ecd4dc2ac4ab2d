// Invitations to rooms: listed in the sidebar (GET /me/invites, then live `invited` frames) with
// Accept (join and open the room) and Decline.

import { api, describeError } from './api.js';
import { displayName, el } from './render.js';
import { addRoom, openRoom } from './rooms.js';
import { $, state } from './state.js';
import { toast } from './ui.js';
import { renderRoomList } from './view.js';

export function loadInvites() {
  api.invites().then(({ invites }) => {
    state.invites.clear();
    for (const inv of invites || []) if (inv.room) state.invites.set(inv.room.id, inv);
    renderInvites();
  }).catch(() => { /* a server without invitations: nothing to show */ });
}

/** The `invited` frame: someone invited the user to a room. */
export function onInvited(f) {
  if (!f.room || typeof f.room.id !== 'number' || state.rooms.has(f.room.id)) return;
  state.invites.set(f.room.id, { room: f.room, invited_by: f.invited_by, at: f.at });
  renderInvites();
  toast(`${displayName(f.invited_by)} invited you to #${f.room.name}.`);
}

async function answer(inv, accept, button) {
  button.disabled = true;
  try {
    if (accept) {
      const room = await api.acceptInvite(inv.room.id);
      state.invites.delete(inv.room.id);
      addRoom(room);
      renderRoomList();
      openRoom(room.id);
    } else {
      await api.declineInvite(inv.room.id);
      state.invites.delete(inv.room.id);
      $('composer-input').focus();
    }
  } catch (e) {
    toast(describeError(e), 'error');
    button.disabled = false;
  }
  renderInvites();
}

export function renderInvites() {
  for (const id of state.invites.keys()) if (state.rooms.has(id)) state.invites.delete(id); // joined meanwhile
  const list = $('invite-list');
  list.replaceChildren(...[...state.invites.values()].map((inv) => {
    const name = `#${inv.room.name}`;
    return el('li', { class: 'invite-item', dataset: { roomId: inv.room.id } },
      el('span', { class: 'invite-info' },
        el('span', { class: 'room-name', text: name }),
        el('span', { class: 'muted small', text: `from ${displayName(inv.invited_by)}` })),
      el('button', { class: 'btn btn-small btn-primary', type: 'button', text: 'Accept', 'aria-label': `Accept the invitation to ${name}`,
        onclick: (ev) => answer(inv, true, ev.currentTarget) }),
      el('button', { class: 'btn btn-small', type: 'button', text: 'Decline', 'aria-label': `Decline the invitation to ${name}`,
        onclick: (ev) => answer(inv, false, ev.currentTarget) }));
  }));
  $('invites-section').hidden = state.invites.size === 0;
}
