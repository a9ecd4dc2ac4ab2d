// Conversations (issue 14): replying, reactions, the thread and pins panel, notification levels,
// desktop notifications and the favicon badge. Frames in, DOM out; the wire names are those of
// docs/PROTOCOL.md ("Conversations").

import { describeError } from './api.js';
import { excerpt } from './markdown.js';
import { setMembersPanel } from './panels.js';
import { displayName, el, renderMessage } from './render.js';
import { currentRoom, isDirect, loadOlder, openRoom, roomLabel } from './rooms.js';
import { $, state } from './state.js';
import { closeDialog, openDialog, toast } from './ui.js';
import { messageItem, renderMessages, renderRoomList, requestOrThrow } from './view.js';

export const COMMON_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀', '✅', '🔥'];
const THREAD_PAGE = 50;

// ───────────────────────────── replies ─────────────────────────────

/** Start a reply to `m`: the composer shows what is answered until sent or cancelled. */
export function startReply(m) {
  state.replyTo = { room: m.room, seq: m.seq, sender: m.sender, excerpt: excerpt(m.body, 80) };
  renderReplyBar();
  $('composer-input').focus();
}

export function cancelReply({ focus = true } = {}) {
  state.replyTo = null;
  renderReplyBar();
  if (focus) $('composer-input').focus();
}

/** The seq the next message of `roomId` answers (and forget it), or null. */
export function takeReply(roomId) {
  const r = state.replyTo;
  if (!r || r.room !== roomId) return null;
  cancelReply({ focus: false });
  return r.seq;
}

export function renderReplyBar() {
  const r = state.replyTo;
  const show = !!r && r.room === state.current;
  $('reply-bar').hidden = !show;
  if (show) $('reply-bar-text').textContent = `Replying to ${displayName(r.sender)}: ${r.excerpt}`;
}

/** Scroll to message `seq` of the open room, loading older pages (bounded) when not held. */
export async function jumpTo(seq) {
  const room = currentRoom();
  if (!room) return;
  for (let i = 0; i < 20 && room.loaded && !room.bySeq.has(seq) && room.hasOlder && room.lo > seq; i++) {
    await loadOlder(room);
  }
  const li = messageItem(room.id, seq);
  if (!li) { toast('That message is no longer available.'); return; }
  li.scrollIntoView({ block: 'center' });
  li.classList.add('msg-flash');
  setTimeout(() => li.classList.remove('msg-flash'), 2000);
}

// ───────────────────────────── reactions ─────────────────────────────

export async function toggleReaction(m, emoji, mine) {
  try {
    const reply = await requestOrThrow({ type: mine ? 'unreact' : 'react', room: m.room, seq: m.seq, emoji });
    onReactions(reply);
  } catch (e) {
    toast(describeError(e), 'error');
  }
}

/** The picker: common emoji and those already on the message. */
export function pickReaction(m, opener) {
  const have = (m.reactions || []).map((r) => r.emoji);
  const choices = [...new Set([...have, ...COMMON_EMOJI])];
  $('react-choices').replaceChildren(...choices.map((emoji) => {
    const mine = !!(m.reactions || []).find((r) => r.emoji === emoji && (r.users || []).includes(state.me.id));
    return el('button', { class: mine ? 'reaction reaction-mine' : 'reaction', type: 'button', 'aria-pressed': String(mine),
      'aria-label': `${emoji}${mine ? ' (yours: take back)' : ''}`, dataset: { emoji },
      onclick: () => { closeDialog($('react-dialog')); toggleReaction(m, emoji, mine); } }, emoji);
  }));
  openDialog($('react-dialog'), opener);
  $('react-choices').querySelector('button')?.focus();
}

/** `reactions` event or reply: the message's whole new list. */
export function onReactions(f) {
  const room = f && state.rooms.get(f.room);
  if (!room || typeof f.seq !== 'number') return;
  const reactions = Array.isArray(f.reactions) ? f.reactions : [];
  room.patch(f.seq, { reactions });
  patchPanel(f.room, f.seq, { reactions });
  if (room.id === state.current) renderMessages();
}

// ───────────────────────────── threads ─────────────────────────────

export function onThreadUpdated(f) {
  const room = f && state.rooms.get(f.room);
  if (!room) return;
  room.patch(f.seq, { reply_count: f.reply_count, last_reply_ts: f.last_reply_ts });
  const c = state.convo;
  if (c && c.mode === 'thread' && c.room === f.room && c.seq === f.seq) loadThread({ newer: true });
  if (room.id === state.current) renderMessages();
}

export function openThread(m) {
  const root = typeof m.thread === 'number' ? m.thread : m.seq;
  state.convo = { mode: 'thread', room: m.room, seq: root, root: null, messages: [], hasMore: false };
  setConvoPanel(true);
  loadThread();
}

/** First page, the next page (`more`), or what is new after the newest held (`newer`). */
export async function loadThread({ more = false, newer = false } = {}) {
  const c = state.convo;
  if (!c || c.mode !== 'thread' || c.loading) return;
  const frame = { type: 'thread', room: c.room, seq: c.seq, limit: THREAD_PAGE };
  const last = c.messages.length ? c.messages[c.messages.length - 1].seq : null;
  if ((more || newer) && last !== null) frame.after = last;
  c.loading = true;
  $('convo-status').textContent = c.root ? '' : 'Loading…';
  try {
    const page = await requestOrThrow(frame);
    if (state.convo !== c) return;
    c.root = page.root;
    const seen = new Set(c.messages.map((x) => x.seq));
    for (const x of page.messages || []) if (!seen.has(x.seq)) c.messages.push(x);
    c.messages.sort((a, b) => a.seq - b.seq);
    if (!newer || !page.has_more) c.hasMore = !!page.has_more;
    $('convo-status').textContent = '';
  } catch (e) {
    if (state.convo === c) $('convo-status').textContent = describeError(e);
  } finally {
    c.loading = false;
  }
  renderConvo();
}

// ───────────────────────────── pins ─────────────────────────────

export async function loadPins(room) {
  if (!room || room.pinsLoading) return;
  room.pinsLoading = true;
  try {
    const reply = await requestOrThrow({ type: 'pins', room: room.id });
    room.pins = Array.isArray(reply.pins) ? reply.pins : [];
  } catch (e) {
    if (state.convo?.mode === 'pins' && state.convo.room === room.id) $('convo-status').textContent = describeError(e);
  } finally {
    room.pinsLoading = false;
  }
  if (room.id === state.current) renderMessages();
  if (state.convo?.mode === 'pins' && state.convo.room === room.id) renderConvo();
}

export const isPinned = (room, seq) => !!room.pins?.some((p) => p.message && p.message.seq === seq);

export async function setPinned(m, on) {
  try {
    await requestOrThrow({ type: on ? 'pin' : 'unpin', room: m.room, seq: m.seq });
    toast(on ? 'Message pinned.' : 'Message unpinned.');
    loadPins(state.rooms.get(m.room));
  } catch (e) {
    toast(describeError(e), 'error');
  }
}

export function openPins() {
  const room = currentRoom();
  if (!room) return;
  if (state.convo?.mode === 'pins' && state.convo.room === room.id) { setConvoPanel(false); return; }
  state.convo = { mode: 'pins', room: room.id };
  setConvoPanel(true);
  loadPins(room);
}

/** A `pin` / `unpin` system message: the list changed. */
export function onPinMessage(room) {
  if (room.pins !== null || (state.convo?.mode === 'pins' && state.convo.room === room.id)) loadPins(room);
}

// ───────────────────────────── the side panel ─────────────────────────────

export function setConvoPanel(open) {
  const panel = $('convo-panel');
  if (open && state.membersOpen) setMembersPanel(false, { focus: false });
  if (!open) state.convo = null;
  panel.hidden = !open;
  document.querySelector('.app').classList.toggle('members-open', open || state.membersOpen);
  $('pins-btn').setAttribute('aria-expanded', String(open && state.convo?.mode === 'pins'));
  if (open) { renderConvo(); $('convo-close').focus(); }
}

function patchPanel(roomId, seq, fields) {
  const c = state.convo;
  if (!c || c.room !== roomId) return;
  if (c.mode === 'thread') {
    if (c.root?.seq === seq) c.root = { ...c.root, ...fields };
    c.messages = c.messages.map((x) => (x.seq === seq ? { ...x, ...fields } : x));
  } else {
    const room = state.rooms.get(roomId);
    if (room?.pins) room.pins = room.pins.map((p) => (p.message?.seq === seq ? { ...p, message: { ...p.message, ...fields } } : p));
  }
  renderConvo();
}

export function renderConvo() {
  const c = state.convo;
  const list = $('convo-list');
  if (!c) { list.replaceChildren(); return; }
  const room = state.rooms.get(c.room);
  if (!room) { setConvoPanel(false); return; }
  const ctx = (m) => ({
    me: state.me, inThread: true, canReact: !m.deleted, onToggleReaction: toggleReaction, onPickReaction: pickReaction,
    onJump: (seq) => jumpTo(seq),
  });
  if (c.mode === 'thread') {
    $('convo-title').textContent = `Thread in ${roomLabel(room)}`;
    const items = [];
    if (c.root) items.push(renderMessage(c.root, ctx(c.root)));
    for (const m of c.messages) items.push(renderMessage({ ...m, quote: m.reply_to === c.seq ? null : m.quote }, ctx(m)));
    list.replaceChildren(...items);
    $('convo-more').hidden = !c.hasMore;
    if (c.root && !c.messages.length && !c.loading) $('convo-status').textContent = 'No replies yet.';
  } else {
    $('convo-title').textContent = `Pinned in ${roomLabel(room)}`;
    $('convo-more').hidden = true;
    const pins = room.pins || [];
    list.replaceChildren(...pins.map((p) => {
      const li = renderMessage(p.message, ctx(p.message));
      li.classList.add('pin-item');
      li.querySelector('.msg-main')?.append(el('p', { class: 'muted small pin-by',
        text: `Pinned by ${displayName(p.pinned_by)}` }),
      el('div', { class: 'pin-actions' },
        el('button', { class: 'link-btn', type: 'button', text: 'Show in room', onclick: () => jumpTo(p.message.seq) }),
        room.moderates ? el('button', { class: 'link-btn', type: 'button', text: 'Unpin', 'aria-label': `Unpin message ${p.message.seq}`,
          onclick: () => setPinned(p.message, false) }) : null));
      return li;
    }));
    $('convo-status').textContent = room.pins === null ? 'Loading…' : pins.length ? '' : 'Nothing is pinned in this room.';
  }
}

// ───────────────────────────── notification levels ─────────────────────────────

/** Badges and notifications follow the level: `all` everything, `mentions` mentions only, `none`/muted nothing. */
export function badgeCounts(room, unread) {
  if (room.muted || room.notify === 'none') return { unread: 0, mentions: 0 };
  const mentions = unread === 0 && room.id === state.current && document.visibilityState !== 'hidden' ? 0 : room.mentions;
  return { unread: room.notify === 'mentions' ? 0 : unread, mentions };
}

export function onNotify(f) {
  const room = f && state.rooms.get(f.room);
  if (!room) return;
  room.update({ notify: f.notify, muted: f.muted });
  renderRoomList();
  if ($('settings-dialog').open && room.id === state.current) fillNotifyForm(room);
}

export function fillNotifyForm(room) {
  $('notify-level').value = room.notify || 'all';
  $('notify-muted').checked = !!room.muted;
  renderDesktopState();
}

export async function saveNotify(change) {
  const room = currentRoom();
  if (!room) return;
  const ok = $('notify-ok');
  try {
    const reply = await requestOrThrow({ type: 'notify', room: room.id, ...change });
    onNotify(reply);
    ok.textContent = room.muted ? 'Muted.' : `Notifications: ${{ all: 'all messages', mentions: 'mentions only', none: 'nothing' }[room.notify]}.`;
  } catch (e) {
    ok.textContent = describeError(e);
    fillNotifyForm(room);
  }
}

// ───────────────────────────── desktop notifications and favicon ─────────────────────────────

function renderDesktopState() {
  const p = $('desktop-notify-state');
  const btn = $('desktop-notify-btn');
  if (!('Notification' in window)) { btn.hidden = true; p.textContent = 'This browser cannot show notifications.'; return; }
  btn.hidden = Notification.permission === 'granted';
  p.textContent = { granted: 'Desktop notifications are on (while this tab is hidden).',
    denied: 'Desktop notifications are blocked in the browser settings.', default: '' }[Notification.permission] || '';
}

/** Asked only from the button (a user gesture), never on load. */
export async function enableDesktop() {
  if (!('Notification' in window)) return;
  try { await Notification.requestPermission(); } catch { /* old callback form: ignore */ }
  renderDesktopState();
}

/** Whether the user follows the thread `root` of `room` (wrote in it or was mentioned there), from what is held. */
function follows(room, root) {
  for (const m of room.bySeq.values()) {
    if (m.seq !== root && m.thread !== root) continue;
    if (m.sender?.id === state.me.id || (Array.isArray(m.mentions) && m.mentions.includes(state.me.id))) return true;
  }
  return false;
}

/** A live text message from someone else: notify when the tab is hidden and the level allows. */
export function maybeNotify(room, m, mentionsMe) {
  if (document.visibilityState !== 'hidden' || !('Notification' in window) || Notification.permission !== 'granted') return;
  if (room.muted || room.notify === 'none' || m.deleted) return;
  let why = null;
  if (mentionsMe) why = 'mentioned you';
  else if (isDirect(room)) why = 'sent you a message';
  else if (typeof m.thread === 'number' && follows(room, m.thread)) why = 'replied in a thread you follow';
  if (!why) return;
  try {
    const n = new Notification(`${displayName(m.sender)} ${why} in ${roomLabel(room)}`, {
      body: excerpt(m.body, 140), tag: `parley-${room.id}-${m.seq}`,
    });
    n.onclick = () => { window.focus(); openRoom(room.id); n.close(); };
    state.notified = (state.notified || 0) + 1; // for tests and diagnostics
  } catch { /* some platforms only allow notifications from a service worker */ }
}

let faviconBase = null;
let faviconShown = -1;
/** The tab's icon carries the number of mentions shown in the room list (0: the plain icon). */
export function setFaviconBadge(count) {
  if (count === faviconShown) return;
  faviconShown = count;
  document.documentElement.dataset.mentionBadge = String(count);
  const link = document.querySelector('link[rel="icon"]');
  if (!link) return;
  if (!count) { link.href = '/favicon.svg'; link.type = 'image/svg+xml'; return; }
  const draw = (img) => {
    if (faviconShown !== count) return;
    const c = document.createElement('canvas');
    c.width = c.height = 64;
    const g = c.getContext('2d');
    if (img) g.drawImage(img, 0, 0, 64, 64);
    g.fillStyle = '#d92d20';
    g.beginPath(); g.arc(44, 20, 20, 0, Math.PI * 2); g.fill();
    g.fillStyle = '#fff';
    g.font = 'bold 26px sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(count > 9 ? '9+' : String(count), 44, 21);
    link.type = 'image/png';
    link.href = c.toDataURL('image/png');
  };
  if (faviconBase) { draw(faviconBase); return; }
  const img = new Image();
  img.onload = () => { faviconBase = img; draw(img); };
  img.onerror = () => draw(null);
  img.src = '/favicon.svg';
}

export function wireConvo() {
  $('reply-cancel').addEventListener('click', () => cancelReply());
  $('composer-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && state.replyTo) { ev.preventDefault(); cancelReply(); }
  });
  $('pins-btn').addEventListener('click', () => openPins());
  $('convo-close').addEventListener('click', () => { setConvoPanel(false); $('composer-input').focus(); });
  $('convo-panel').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !document.querySelector('dialog[open]')) { ev.stopPropagation(); setConvoPanel(false); $('composer-input').focus(); }
  });
  $('convo-more').addEventListener('click', () => loadThread({ more: true }));
  $('notify-level').addEventListener('change', (ev) => saveNotify({ level: ev.currentTarget.value }));
  $('notify-muted').addEventListener('change', (ev) => saveNotify({ muted: ev.currentTarget.checked }));
  $('notify-form').addEventListener('submit', (ev) => ev.preventDefault());
  $('desktop-notify-btn').addEventListener('click', () => enableDesktop());
}
