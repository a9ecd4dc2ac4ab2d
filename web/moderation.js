// Moderation and room settings: what one member may do to another (kick, ban, roles, ownership),
// each offered only to those allowed and confirmed first; the room-settings dialog (name, topic,
// visibility, retention, webhooks and their failed deliveries, banned users, leave).

import { fillNotifyForm } from './convo.js';
import { api, describeError } from './api.js';
import { loadMembers } from './panels.js';
import { displayName, el } from './render.js';
import { addRoom, currentRoom, isDirect, roomLabel } from './rooms.js';
import { $, state } from './state.js';
import { busy, closeDialog, dialogError, openDialog, toast } from './ui.js';
import { renderHeader, renderRoomList } from './view.js';

const RANK = { owner: 0, admin: 1, member: 2 };

/** What the signed-in user may do to member `u` of `room` (the server decides; this only hides what it would refuse). */
export function allowedActions(room, u) {
  if (!room || isDirect(room) || !state.me || u.id === state.me.id) return [];
  const mine = RANK[room.role] ?? 3;
  const theirs = RANK[u.role] ?? 2;
  const out = [];
  if (mine <= 1 && mine < theirs) out.push('kick', 'ban');
  if (room.role === 'owner') {
    out.push(u.role === 'admin' ? 'demote' : 'promote');
    out.push('transfer');
  }
  return out;
}

const ACTIONS = {
  kick: {
    label: 'Remove from room', danger: true,
    confirm: (u, room) => [`Remove ${displayName(u)}?`, `${displayName(u)} leaves ${roomLabel(room)}. They can join again${room.visibility === 'private' ? ' if invited' : ''}.`, 'Remove'],
    run: (room, u) => api.kick(room.id, u.username),
    done: (u) => `${displayName(u)} was removed.`,
  },
  ban: {
    label: 'Ban', danger: true,
    confirm: (u, room) => [`Ban ${displayName(u)}?`, `${displayName(u)} leaves ${roomLabel(room)} and cannot come back until unbanned.`, 'Ban'],
    run: (room, u) => api.ban(room.id, u.username),
    done: (u) => `${displayName(u)} was banned.`,
  },
  promote: {
    label: 'Make admin', danger: false,
    confirm: (u, room) => [`Make ${displayName(u)} an admin?`, `Admins can remove and ban members and change the settings of ${roomLabel(room)}.`, 'Make admin'],
    run: (room, u) => api.setRole(room.id, u.username, 'admin'),
    done: (u) => `${displayName(u)} is now an admin.`,
  },
  demote: {
    label: 'Make member', danger: false,
    confirm: (u, room) => [`Make ${displayName(u)} a member?`, `${displayName(u)} will no longer moderate ${roomLabel(room)}.`, 'Make member'],
    run: (room, u) => api.setRole(room.id, u.username, 'member'),
    done: (u) => `${displayName(u)} is now a member.`,
  },
  transfer: {
    label: 'Transfer ownership', danger: true,
    confirm: (u, room) => [`Make ${displayName(u)} the owner?`, `${displayName(u)} will own ${roomLabel(room)}; you become an admin. Only they can undo this.`, 'Transfer'],
    run: (room, u) => api.transfer(room.id, u.username),
    done: (u) => `${displayName(u)} now owns the room.`,
  },
};

let pending = null; // {run, done, after} of the action being confirmed

/** Ask before doing something that affects others. */
export function confirmThen({ title, text, label, danger = true, run, done, after }, opener) {
  pending = { run, done, after };
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  const ok = $('confirm-ok');
  ok.textContent = label;
  ok.className = `btn ${danger ? 'btn-danger' : 'btn-primary'}`;
  openDialog($('confirm-dialog'), opener);
  ok.focus();
}

async function confirmed(form) {
  const p = pending;
  if (!p) { closeDialog($('confirm-dialog')); return; }
  busy(form, true);
  try {
    await p.run();
    pending = null;
    closeDialog($('confirm-dialog'));
    if (p.done) toast(p.done);
    p.after?.();
  } catch (e) {
    dialogError($('confirm-dialog'), e);
  } finally {
    busy(form, false);
  }
}

/** The per-member dialog: the actions allowed on `u`, each confirmed. */
export function openMemberDialog(u, opener) {
  const room = currentRoom();
  if (!room) return;
  const dlg = $('member-dialog');
  $('member-title').textContent = `${displayName(u)} (@${u.username})`;
  $('member-role').textContent = u.role === 'owner' ? 'Owner of the room' : u.role === 'admin' ? 'Admin' : 'Member';
  const actions = allowedActions(room, u);
  $('member-actions').replaceChildren(...actions.map((a) => {
    const spec = ACTIONS[a];
    return el('button', {
      class: `btn ${spec.danger ? 'btn-danger' : ''}`, type: 'button', dataset: { action: a }, text: spec.label,
      onclick: () => {
        closeDialog(dlg);
        const [title, text, label] = spec.confirm(u, room);
        confirmThen({ title, text, label, danger: spec.danger, run: () => spec.run(room, u), done: spec.done(u),
          after: () => loadMembers(room) }, opener);
      },
    });
  }));
  openDialog(dlg, opener);
  dlg.querySelector('#member-actions button, [data-close]')?.focus();
}

// ───────────────────────────── room settings ─────────────────────────────

export function openSettings(opener) {
  const room = currentRoom();
  if (!room) return;
  const dlg = $('settings-dialog');
  const direct = isDirect(room);
  const can = room.moderates && !direct;
  $('settings-title').textContent = `Settings of ${roomLabel(room)}`;
  $('settings-readonly').hidden = can || direct;
  $('settings-leave').hidden = direct;
  fillNotifyForm(room);
  $('settings-form').hidden = !can;
  $('webhooks-section').hidden = !can;
  $('bans-section').hidden = !can;
  $('settings-error').hidden = true;
  $('webhook-secret').hidden = true;
  $('settings-name').value = room.name;
  $('settings-topic').value = room.extra.topic || '';
  $('settings-visibility').hidden = room.role !== 'owner';
  for (const r of document.querySelectorAll('input[name="settings-vis"]')) r.checked = r.value === room.visibility;
  const keep = room.extra.retention_secs;
  const sel = $('settings-retention');
  if (keep && ![...sel.options].some((o) => o.value === String(keep))) {
    sel.append(el('option', { value: String(keep), text: `${keep} seconds` }));
  }
  sel.value = keep ? String(keep) : '';
  openDialog(dlg, opener);
  (can ? $('settings-topic') : $('notify-level')).focus();
  if (can) { loadWebhooks(room); loadBans(room); }
}

function settingsError(e) {
  const p = $('settings-error');
  p.textContent = typeof e === 'string' ? e : describeError(e);
  p.hidden = false;
}

async function saveSettings(form) {
  const room = currentRoom();
  if (!room) return;
  const changes = {};
  const name = $('settings-name').value.trim();
  const topic = $('settings-topic').value.trim();
  if (name && name !== room.name) changes.name = name;
  if (topic !== (room.extra.topic || '')) changes.topic = topic;
  const vis = form.querySelector('input[name="settings-vis"]:checked')?.value;
  if (room.role === 'owner' && vis && vis !== room.visibility) changes.visibility = vis;
  const keep = $('settings-retention').value;
  const keepNow = room.extra.retention_secs ?? null;
  const keepNew = keep ? Number(keep) : null;
  if (keepNew !== keepNow) changes.retention_secs = keepNew;
  const ok = form.querySelector('.form-ok');
  form.querySelector('.form-error').hidden = true;
  if (Object.keys(changes).length === 0) { ok.textContent = 'Nothing changed.'; ok.hidden = false; return; }
  busy(form, true);
  try {
    const updated = await api.updateRoom(room.id, changes);
    addRoom(updated);
    renderHeader();
    renderRoomList();
    ok.textContent = 'Saved.';
    ok.hidden = false;
  } catch (e) {
    ok.hidden = true;
    dialogError($('settings-dialog'), e);
  } finally {
    busy(form, false);
  }
}

async function loadWebhooks(room) {
  try {
    const [{ webhooks }, { deliveries }] = await Promise.all([api.webhooks(room.id), api.deadDeliveries(room.id)]);
    $('webhook-list').replaceChildren(...(webhooks || []).map((w) => el('li', { class: 'pick-item' },
      el('span', { class: 'pick-info' }, el('span', { class: 'pick-name', text: w.url })),
      el('button', { class: 'btn btn-small btn-danger', type: 'button', text: 'Delete', 'aria-label': `Delete webhook ${w.url}`,
        onclick: (ev) => confirmThen({ title: 'Delete this webhook?', text: `Messages will no longer be sent to ${w.url}.`, label: 'Delete',
          run: () => api.deleteWebhook(room.id, w.id), done: 'Webhook deleted.', after: () => loadWebhooks(room) }, ev.currentTarget) }))));
    $('webhook-empty').hidden = (webhooks || []).length > 0;
    $('dead-list').replaceChildren(...(deliveries || []).map((d) => el('li', { class: 'pick-item' },
      el('span', { class: 'pick-info' },
        el('span', { class: 'pick-name', text: `Message ${d.seq} — ${d.attempts} attempts` }),
        el('span', { class: 'muted small', text: d.error || '' })))));
    $('dead-empty').hidden = (deliveries || []).length > 0;
  } catch (e) {
    settingsError(e);
  }
}

async function addWebhook(form) {
  const room = currentRoom();
  const url = $('webhook-url').value.trim();
  if (!room || !url) return;
  busy(form, true);
  try {
    const w = await api.addWebhook(room.id, url);
    $('webhook-url').value = '';
    const p = $('webhook-secret');
    p.textContent = `Webhook added. Its signing secret (shown only now): ${w.secret}`;
    p.hidden = false;
    loadWebhooks(room);
  } catch (e) {
    settingsError(e);
  } finally {
    busy(form, false);
  }
}

async function loadBans(room) {
  try {
    const { bans } = await api.bans(room.id);
    $('ban-list').replaceChildren(...(bans || []).map((b) => el('li', { class: 'pick-item' },
      el('span', { class: 'pick-info' }, el('span', { class: 'pick-name', text: `${displayName(b.user)} (@${b.user.username})` })),
      el('button', { class: 'btn btn-small', type: 'button', text: 'Unban', 'aria-label': `Unban ${b.user.username}`,
        onclick: (ev) => confirmThen({ title: `Unban ${displayName(b.user)}?`, text: `${displayName(b.user)} will be able to join ${roomLabel(room)} again.`,
          label: 'Unban', danger: false, run: () => api.unban(room.id, b.user.username), done: `${displayName(b.user)} was unbanned.`,
          after: () => loadBans(room) }, ev.currentTarget) }))));
    $('ban-empty').hidden = (bans || []).length > 0;
  } catch (e) {
    settingsError(e);
  }
}

export function wireModeration() {
  $('confirm-form').addEventListener('submit', (ev) => { ev.preventDefault(); confirmed(ev.currentTarget); });
  $('confirm-dialog').addEventListener('close', () => { pending = null; });
  $('settings-btn').addEventListener('click', (ev) => openSettings(ev.currentTarget));
  $('settings-form').addEventListener('submit', (ev) => { ev.preventDefault(); saveSettings(ev.currentTarget); });
  $('webhook-form').addEventListener('submit', (ev) => { ev.preventDefault(); addWebhook(ev.currentTarget); });
  $('settings-leave').addEventListener('click', () => { closeDialog($('settings-dialog')); $('leave-btn').click(); });
}
