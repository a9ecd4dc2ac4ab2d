// Search: the search box (the sidebar's "Search messages" button or `/` anywhere outside a text field;
// Ctrl+K stays the room switcher), its results, and jumping to a hit: the room opens with history
// loaded back to the message, which is scrolled to and highlighted.
//
// Snippets are plain text from the server with highlight ranges in characters; they are rendered as
// text nodes and <mark> elements, never parsed as HTML.

import { api, describeError } from './api.js';
import { el } from './render.js';
import { loadOlder, openRoom } from './rooms.js';
import { $, state } from './state.js';
import { closeDialog, openDialog } from './ui.js';
import { renderMessages } from './view.js';

let cursor = null;
let lastQuery = '';
let timer = null;
let generation = 0;

/** The snippet as nodes: text, with each highlight range in a <mark>. Offsets are in characters. */
export function snippetNodes(snippet, highlights) {
  const chars = Array.from(snippet);
  const nodes = [];
  let at = 0;
  for (const [start, end] of highlights || []) {
    if (start < at || end <= start || end > chars.length) continue;
    if (start > at) nodes.push(document.createTextNode(chars.slice(at, start).join('')));
    nodes.push(el('mark', { text: chars.slice(start, end).join('') }));
    at = end;
  }
  if (at < chars.length) nodes.push(document.createTextNode(chars.slice(at).join('')));
  return nodes;
}

function hitItem(hit) {
  const where = hit.room_kind === 'direct' ? 'conversation' : `#${hit.room_name}`;
  const who = hit.message.sender ? hit.message.sender.display_name : '';
  const when = new Date(hit.message.ts).toLocaleString();
  return el('li', { class: 'pick-item search-hit-item', dataset: { room: hit.room, seq: hit.seq } },
    el('button', { type: 'button', class: 'search-hit-btn', onclick: () => jumpTo(hit.room, hit.seq) },
      el('span', { class: 'search-hit-where', text: `${where} · ${who} · ${when}` }),
      el('span', { class: 'search-hit-snippet' }, ...snippetNodes(hit.snippet, hit.highlights))));
}

async function run(more = false) {
  const q = $('search-input').value.trim();
  const status = $('search-status');
  if (!q) {
    $('search-results').replaceChildren();
    status.textContent = '';
    $('search-more').hidden = true;
    return;
  }
  const mine = ++generation;
  if (!more) cursor = null;
  lastQuery = q;
  try {
    const res = await api.search(q, more ? cursor : null);
    if (mine !== generation) return; // a newer query is under way
    const items = res.hits.map(hitItem);
    if (more) $('search-results').append(...items);
    else $('search-results').replaceChildren(...items);
    cursor = res.next_cursor || null;
    $('search-more').hidden = !cursor;
    const n = $('search-results').children.length;
    status.textContent = n ? `${n}${cursor ? '+' : ''} message${n === 1 ? '' : 's'}` : 'No messages match.';
  } catch (e) {
    if (mine === generation) status.textContent = describeError(e);
  }
}

/** Opens the room at `seq`: history is loaded back to the message, which is shown and highlighted. */
export async function jumpTo(roomId, seq) {
  state.dialogOpener = null;
  closeDialog($('search-dialog'));
  if (!state.rooms.has(roomId)) return;
  openRoom(roomId);
  const room = state.rooms.get(roomId);
  // Wait (bounded) for the room's first page, then page back until the hit is held.
  for (let i = 0; i < 100 && room.lo === null; i++) await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 50 && room.lo !== null && room.lo > seq && room.hasOlder && state.conn?.isOpen(); i++) {
    const before = room.lo;
    await loadOlder(room);
    if (room.lo === before) break;
  }
  renderMessages({ keepAnchor: true });
  const li = document.querySelector(`#messages li[data-seq="${Number(seq)}"]`);
  if (!li) return;
  document.querySelectorAll('#messages .search-target').forEach((x) => x.classList.remove('search-target'));
  li.classList.add('search-target');
  li.scrollIntoView({ block: 'center' });
}

export function openSearch() {
  if (!state.me || document.querySelector('dialog[open]')) return;
  openDialog($('search-dialog'));
  $('search-input').select();
  $('search-input').focus();
}

export function wireSearch() {
  document.addEventListener('keydown', (ev) => {
    if ($('app-screen').hidden || ev.key !== '/' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    ev.preventDefault();
    openSearch();
  });
  $('search-open').addEventListener('click', openSearch);
  $('search-input').addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => run(false), 250);
  });
  $('search-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      clearTimeout(timer);
      if ($('search-input').value.trim() !== lastQuery || !$('search-results').children.length) run(false);
      else $('search-results').querySelector('button')?.click();
    }
  });
  $('search-more').addEventListener('click', () => run(true));
}
