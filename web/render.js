// DOM building. Every piece of text that comes from the server or the user is set with
// textContent (or as an attribute value through the DOM API); nothing is ever parsed as HTML.

import { fileList } from './files.js';

/** Create an element: el('p', {class: 'x', title: 't'}, child, 'text', …). */
import { excerpt, renderMarkdown } from './markdown.js';

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) { if (typeof v === 'function') node.addEventListener(k.slice(2), v); }
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** An icon from the sprite in index.html (static ids only). */
export function icon(id, cls = 'icon') {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(NS, 'use');
  use.setAttribute('href', '#' + id);
  svg.append(use);
  return svg;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });

export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function dayLabel(ts) {
  const today = dayKey(Date.now());
  const yesterday = dayKey(Date.now() - 86_400_000);
  const k = dayKey(ts);
  if (k === today) return 'Today';
  if (k === yesterday) return 'Yesterday';
  return dayFmt.format(new Date(ts));
}

function timeEl(ts) {
  if (typeof ts !== 'number') return null;
  const d = new Date(ts);
  return el('time', { class: 'msg-time', datetime: d.toISOString(), title: fullFmt.format(d), text: timeFmt.format(d) });
}

export function displayName(user) {
  if (!user) return 'Someone';
  return user.display_name || user.username || `user ${user.id}`;
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/[\s_-]+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[1][0] : String(name || '?').slice(0, 2);
  return s.toUpperCase();
}

/** A stable hue per user id, for avatars (set through CSSOM, which the CSP allows). */
export function hueFor(id) {
  const n = Number(id);
  if (Number.isFinite(n)) return Math.round((n * 137.508) % 360); // golden angle: neighbours differ
  let h = 0;
  for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

export function avatar(user, cls = 'avatar') {
  const a = el('span', { class: cls, 'aria-hidden': 'true', text: initials(displayName(user)) });
  a.style.setProperty('--hue', String(hueFor(user ? user.id : 0)));
  return a;
}

// System lines, by message kind. A kind not listed here gets the generic line. `body` is the
// new role, name or topic for the kinds that carry one.
const SYSTEM_TEXT = {
  join: (who) => `${who} joined the room`,
  leave: (who) => `${who} left the room`,
  create: (who) => `${who} created the room`,
  invite: (who, target) => target ? `${who} invited ${target}` : `${who} sent an invitation`,
  kick: (who, target) => target ? `${who} removed ${target}` : `${who} removed someone`,
  ban: (who, target) => target ? `${who} banned ${target}` : `${who} banned someone`,
  unban: (who, target) => target ? `${who} lifted the ban on ${target}` : `${who} lifted a ban`,
  role: (who, target, body) => {
    const whom = target || 'someone';
    if (body === 'admin') return `${who} made ${whom} admin`;
    if (body === 'member') return `${who} made ${whom} a regular member`;
    if (body === 'owner') return `${who} made ${whom} the owner`;
    return `${who} changed the role of ${whom}`;
  },
  rename: (who, _t, body) => body ? `${who} renamed the room to #${body}` : `${who} renamed the room`,
  topic: (who, _t, body) => body ? `${who} set the topic: ${body}` : `${who} cleared the topic`,
  pin: (who, _t, body) => `${who} pinned message #${body}`,
  unpin: (who, _t, body) => `${who} unpinned message #${body}`,
};
// Kinds whose body is part of the sentence above (the others show it after the line).
const BODY_IN_LINE = new Set(['role', 'rename', 'topic', 'pin', 'unpin']);

/**
 * THE message renderer: every message, live or from history, pending or stored, goes through
 * here. `ctx` = {me, continuation, pending, onRetry, onDiscard, canEdit, canDelete, editing,
 * onEdit, onDelete, onEditSave, onEditCancel, onEditDraft}.
 * `edited_at` shows "(edited)", `deleted` shows a tombstone, `editing` an in-place editor.
 */
export function renderMessage(m, ctx = {}) {
  const kind = m.kind || 'text';
  const who = displayName(m.sender);

  if (kind !== 'text') {
    const make = SYSTEM_TEXT[kind];
    const target = m.target ? displayName(m.target) : '';
    const line = make ? make(who, target, m.body) : `${who}: ${kind} event`;
    const li = el('li', { class: 'msg msg-system', dataset: { seq: m.seq ?? '', kind } },
      el('span', { class: 'msg-system-text', text: line }),
      m.body && !(make && BODY_IN_LINE.has(kind)) ? el('span', { class: 'msg-system-body', text: m.body }) : null,
      timeEl(m.ts));
    return li;
  }

  const mine = ctx.me && m.sender && m.sender.id === ctx.me.id;
  const mentionsMe = !m.deleted && ctx.me && Array.isArray(m.mentions) && m.mentions.includes(ctx.me.id);
  const classes = ['msg', 'msg-text'];
  if (mine) classes.push('msg-mine');
  if (ctx.continuation) classes.push('msg-cont');
  if (ctx.pending) classes.push(ctx.pending.state === 'failed' ? 'msg-failed' : 'msg-pending');
  if (m.deleted) classes.push('msg-deleted');
  if (mentionsMe) classes.push('msg-mention');
  if (ctx.editing) classes.push('msg-editing');

  const li = el('li', {
    class: classes.join(' '),
    dataset: { seq: m.seq ?? '', clientId: m.client_id || '' },
  });

  li.append(ctx.continuation ? el('span', { class: 'avatar-spacer', 'aria-hidden': 'true' }) : avatar(m.sender));

  const main = el('div', { class: 'msg-main' });
  const head = el('div', { class: ctx.continuation ? 'msg-head visually-hidden' : 'msg-head' },
    el('span', { class: 'msg-sender', title: m.sender ? '@' + m.sender.username : '', text: who }),
    timeEl(m.ts),
    mentionsMe ? el('span', { class: 'msg-tag', text: 'mentions you' }) : null);
  main.append(head);

  if (ctx.editing && !m.deleted) {
    main.append(renderEditor(m, ctx));
  } else {
    const body = el('div', { class: 'msg-body' });
    if (m.deleted) body.textContent = 'Message deleted';
    else body.append(renderMarkdown(m.body, ctx.me, mentionsMe));
    if (m.quote && !m.deleted) main.append(renderQuote(m.quote, ctx));
    main.append(body);
    if (!m.deleted && m.files && m.files.length) main.append(fileList(m.files));
  }

  if (m.edited_at && !m.deleted && !ctx.editing) {
    main.append(el('span', { class: 'msg-edited muted', title: 'Edited ' + fullFmt.format(new Date(m.edited_at)), text: '(edited)' }));
  }

  if (!m.deleted && Array.isArray(m.reactions) && m.reactions.length) main.append(renderReactions(m, ctx));
  if (m.reply_count && !ctx.inThread) {
    main.append(el('button', { class: 'link-btn thread-summary', type: 'button', dataset: { action: 'thread' },
      onclick: () => ctx.onThread?.(m),
      text: `${m.reply_count} repl${m.reply_count === 1 ? 'y' : 'ies'}${m.last_reply_ts ? ' · last ' + timeFmt.format(new Date(m.last_reply_ts)) : ''}` }));
  }

  if (ctx.pending) {
    const status = el('div', { class: 'msg-status' });
    if (ctx.pending.state === 'failed') {
      status.append(
        el('span', { class: 'msg-status-text', text: `Not sent: ${ctx.pending.error || 'error'}` }),
        el('button', { class: 'link-btn', type: 'button', text: 'Retry', onclick: () => ctx.onRetry?.(ctx.pending) }),
        el('button', { class: 'link-btn', type: 'button', text: 'Discard', onclick: () => ctx.onDiscard?.(ctx.pending) }),
      );
    } else {
      status.append(el('span', { class: 'msg-status-text', text: 'Sending…' }));
    }
    main.append(status);
  }
  li.append(main);

  // Actions: in the DOM (so Tab reaches them), shown on hover or when focus is inside.
  const stored = !ctx.pending && typeof m.seq === 'number' && !m.deleted && !ctx.editing;
  if (stored) {
    const what = `message from ${who}`;
    // One Tab stop per message: a toolbar whose buttons are reached with ←/→ (roving tabindex).
    const bar = el('div', { class: 'msg-actions', role: 'toolbar', 'aria-label': `Actions for ${what}`, onkeydown: rove });
    const action = (name, label, glyph, run, danger = false) => bar.append(el('button', {
      class: danger ? 'icon-btn icon-btn-sm icon-btn-danger' : 'icon-btn icon-btn-sm', type: 'button', 'aria-label': label, title: label,
      dataset: { action: name }, onclick: (ev) => run(ev.currentTarget) }, icon(glyph, 'icon icon-sm')));
    if (ctx.canReply) action('reply', 'Reply', 'i-reply', () => ctx.onReply?.(m));
    if (ctx.canReact) action('react', 'Add reaction', 'i-smile', (b) => ctx.onPickReaction?.(m, b));
    if (ctx.canPin) action(ctx.pinned ? 'unpin' : 'pin', ctx.pinned ? 'Unpin message' : 'Pin message', 'i-pin', () => ctx.onPin?.(m, !ctx.pinned));
    if (ctx.canEdit) action('edit', 'Edit message', 'i-pencil', () => ctx.onEdit?.(m));
    if (ctx.canDelete) action('delete', 'Delete message', 'i-trash', () => ctx.onDelete?.(m), true);
    [...bar.children].forEach((b, i) => b.setAttribute('tabindex', i === 0 ? '0' : '-1'));
    if (bar.children.length) li.append(bar);
  }
  return li;
}

/** The compact quote of a reply's parent; a click jumps to the parent. */
function renderQuote(q, ctx) {
  const text = q.deleted ? 'Original message deleted' : excerpt(q.excerpt, 120);
  const who = q.deleted ? '' : displayName(q.sender);
  return el('button', { class: q.deleted ? 'msg-quote msg-quote-deleted' : 'msg-quote', type: 'button',
    'aria-label': q.deleted ? 'In reply to a deleted message' : `In reply to ${who}: ${text} (show it)`,
    dataset: { quoteSeq: q.seq }, onclick: () => ctx.onJump?.(q.seq) },
  who ? el('span', { class: 'msg-quote-sender', text: who }) : null,
  el('span', { class: 'msg-quote-text', text }));
}

/** Reactions under a message: one toggle per emoji, with its count; the user's own pressed. */
function renderReactions(m, ctx) {
  const row = el('div', { class: 'msg-reactions', role: 'group', 'aria-label': 'Reactions' });
  for (const r of m.reactions) {
    const mine = !!(ctx.me && Array.isArray(r.users) && r.users.includes(ctx.me.id));
    row.append(el('button', {
      class: mine ? 'reaction reaction-mine' : 'reaction', type: 'button', 'aria-pressed': String(mine),
      'aria-label': `${r.emoji} ${r.count} reaction${r.count === 1 ? '' : 's'}${mine ? ', including yours' : ''}`,
      dataset: { emoji: r.emoji }, disabled: !ctx.canReact, onclick: () => ctx.onToggleReaction?.(m, r.emoji, mine),
    }, el('span', { class: 'reaction-emoji', text: r.emoji }), el('span', { class: 'reaction-count', text: String(r.count) })));
  }
  return row;
}

/** ←/→ (and Home/End) move focus between the buttons of a toolbar; Tab leaves it. */
function rove(ev) {
  const buttons = [...ev.currentTarget.querySelectorAll('button')];
  const i = buttons.indexOf(document.activeElement);
  if (i < 0) return;
  const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: buttons.length - 1 }[ev.key];
  if (next === undefined) return;
  ev.preventDefault();
  const target = buttons[(next + buttons.length) % buttons.length];
  for (const b of buttons) b.setAttribute('tabindex', b === target ? '0' : '-1');
  target.focus();
}

/** In-place editor: Enter saves, Shift+Enter is a new line, Escape cancels. */
function renderEditor(m, ctx) {
  const id = `edit-${m.room}-${m.seq}`;
  const area = el('textarea', { id, class: 'msg-edit-input', rows: '1', 'aria-describedby': id + '-hint' });
  area.value = typeof ctx.editing.draft === 'string' ? ctx.editing.draft : m.body;
  const form = el('form', { class: 'msg-editor' },
    el('label', { class: 'visually-hidden', for: id, text: 'Edit message' }),
    area,
    el('div', { class: 'msg-editor-bar' },
      el('span', { id: id + '-hint', class: 'muted', text: 'Enter to save · Escape to cancel' }),
      el('button', { class: 'link-btn', type: 'button', text: 'Cancel', onclick: () => ctx.onEditCancel?.(m) }),
      el('button', { class: 'link-btn', type: 'submit', text: 'Save' })));
  if (ctx.editing.busy) { area.readOnly = true; form.setAttribute('aria-busy', 'true'); }
  const autosize = () => { area.style.height = 'auto'; area.style.height = Math.min(area.scrollHeight, 240) + 'px'; };
  area.addEventListener('input', () => { ctx.onEditDraft?.(m, area.value); autosize(); });
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit(); }
    else if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); ctx.onEditCancel?.(m); }
  });
  form.addEventListener('submit', (ev) => { ev.preventDefault(); ctx.onEditSave?.(m, area.value); });
  requestAnimationFrame(autosize);
  return form;
}

export function renderDayDivider(ts) {
  return el('li', { class: 'day-divider' }, el('span', { text: dayLabel(ts) }));
}

/**
 * Keyed reconciliation of a list: `items` = [{key, rev, build()}] in display order. Existing
 * nodes are kept (screen readers then announce only what is new, as role="log" expects);
 * missing ones are built, stale ones removed, changed ones (rev differs) rebuilt.
 */
export function reconcile(list, items, cache) {
  const wanted = new Set(items.map((i) => i.key));
  for (const [key, entry] of cache) {
    if (!wanted.has(key)) {
      entry.node.remove();
      cache.delete(key);
    }
  }
  let cursor = list.firstChild;
  for (const item of items) {
    let entry = cache.get(item.key);
    if (entry && entry.rev !== item.rev) {
      const fresh = item.build();
      entry.node.replaceWith(fresh);
      if (cursor === entry.node) cursor = fresh;
      entry = { node: fresh, rev: item.rev };
      cache.set(item.key, entry);
    }
    if (!entry) {
      entry = { node: item.build(), rev: item.rev };
      cache.set(item.key, entry);
    }
    if (entry.node !== cursor) list.insertBefore(entry.node, cursor);
    else cursor = cursor.nextSibling;
  }
  // Anything after the last wanted node that is not ours (should not happen) is left alone.
}
