// Parley web client: boot, login, and the wiring of static controls.
//
//  api.js      REST under /api/v1 (cookie-authenticated)
//  conn.js     the WebSocket, reconnect with backoff + jitter, req/reply matching
//  store.js    rooms with contiguous message windows, outbox, seen/unread
//  render.js   renderMessage() (the one message renderer) and DOM helpers
//  state.js    the shared state object and constants
//  frames.js   FRAME_HANDLERS (the one dispatch table)
//  rooms.js    rooms, history loading, read state, sending
//  view.js     room list, header, message list, editing
//  panels.js   members panel, typing line, connection banner
//  ui.js       toasts, dialogs, drawer
//  app.js      this file

import { api, describeError } from './api.js';
import { Connection } from './conn.js';
import { wireFiles } from './files.js';
import { takeReply, wireConvo } from './convo.js';
import { dispatch } from './frames.js';
import { wireKeys } from './keys.js';
import { wireSearch } from './search.js';
import { wireModeration } from './moderation.js';
import { onConnState, renderTyping, setMembersPanel, startDm } from './panels.js';
import { displayName, el } from './render.js';
import { addRoom, currentRoom, loadOlder, markSeen, openRoom, optionalFrame, removeRoom, roomFromHash, roomLabel, sendMessage } from './rooms.js';
import { $, state, tooLong } from './state.js';
import { Outbox, SeenStore } from './store.js';
import { applyDrawerMode, busy, closeAllDialogs, closeDialog, dialogError, narrow, openDialog, setDrawer, toast } from './ui.js';
import { clearRoomList, confirmDelete, renderHeader, renderMe, renderMessages, renderRoomList, resetMessageList } from './view.js';
// ───────────────────────────── boot ─────────────────────────────

export async function boot() {
  wireStatic();
  // The server's limits (message size, …); the defaults stand when it cannot tell.
  api.config().then((c) => { if (c && c.max_message_bytes > 0) state.limits = c; }).catch(() => {});
  try {
    const me = await api.me();
    enterApp(me);
  } catch (e) {
    showAuth(e.status && e.status !== 401 ? describeError(e) : '');
  } finally {
    $('boot').hidden = true;
  }
}

export function showAuth(message = '') {
  $('app-screen').hidden = true;
  $('auth-screen').hidden = false;
  document.title = 'Parley — log in';
  const err = $('auth-error');
  err.textContent = message;
  err.hidden = !message;
  $('auth-password').value = '';
  $('auth-username').focus();
}

export function enterApp(user) {
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

export function sessionEnded(message) {
  teardown();
  showAuth(message);
}

export function teardown() {
  state.conn?.stop();
  state.conn = null;
  state.me = null;
  state.rooms.clear();
  state.current = null;
  state.everConnected = false;
  state.helloCount = 0;
  state.members.clear();
  state.presence.clear();
  state.invites.clear();
  $('invites-section').hidden = true;
  state.editing = null;
  setMembersPanel(false, { focus: false });
  clearRoomList();
  resetMessageList();
  closeAllDialogs();
  setDrawer(false);
  $('conn-banner').hidden = true;
}

// ───────────────────────────── static wiring ─────────────────────────────

export function wireStatic() {
  wireModeration();
  wireConvo();
  wireKeys();
  wireFiles({ roomId: () => state.current, notify: toast });
  wireSearch();
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
    const long = tooLong(body);
    if (long) { toast(long, 'error'); return; }
    sendMessage(body, takeReply(state.current));
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
      const back = state.dialogOpener;
      state.dialogOpener = null;
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

export let lastTypingSent = 0;
export function maybeSendTyping() {
  if (state.current === null || !$('composer-input').value.trim()) return;
  const now = Date.now();
  if (now - lastTypingSent < 3000) return;
  lastTypingSent = now;
  optionalFrame('typing', { type: 'typing', room: state.current });
}

export async function openBrowse(opener) {
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

export async function joinRoom(ref, control) {
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
