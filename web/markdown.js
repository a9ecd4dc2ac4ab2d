// Message bodies as the documented Markdown subset (docs/PROTOCOL.md, "Formatting"): emphasis,
// strong, strikethrough, inline code, code blocks, block quotes, lists and links (bare URLs
// auto-linked; only http, https and mailto). Parsed by markdown-it (raw HTML off) and the result
// sanitized by DOMPurify to that subset of tags, then used as DOM nodes: never a string put into
// innerHTML. Both libraries are vendored from npm in web/vendor/ with their licences.

import './vendor/markdown-it.min.js'; // UMD bundle: defines globalThis.markdownit
import DOMPurify from './vendor/purify.es.js';
import { el } from './render.js';

const SAFE_URL = /^(?:https?:|mailto:)/i;

// Soft line breaks stay "\n" text: the message body keeps white-space: pre-wrap, as for plain text.
const md = globalThis.markdownit('zero', { html: false, linkify: true, breaks: false, typographer: false });
md.enable([
  'linkify', 'newline', 'escape', 'backticks', 'strikethrough', 'emphasis', 'link', 'autolink',
  'code', 'fence', 'blockquote', 'list', 'paragraph', 'balance_pairs', 'fragments_join', 'text_join',
], true);
md.validateLink = (url) => SAFE_URL.test(String(url).trim());

const ALLOWED_TAGS = ['p', 'br', 'em', 'strong', 's', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'a'];

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName !== 'A') return;
  const href = node.getAttribute('href') || '';
  if (!SAFE_URL.test(href)) { node.removeAttribute('href'); return; }
  node.setAttribute('target', '_blank');
  node.setAttribute('rel', 'noopener noreferrer');
});

const PURIFY = {
  ALLOWED_TAGS, ALLOWED_ATTR: ['href', 'start'], ALLOWED_URI_REGEXP: SAFE_URL,
  RETURN_DOM_FRAGMENT: true, ALLOW_DATA_ATTR: false,
};

/** The body as a sanitized fragment; `@me` mentions (outside code and links) get a highlight. */
export function renderMarkdown(text, me, roomMention = false) {
  const frag = DOMPurify.sanitize(md.render(String(text)), PURIFY);
  // A lone paragraph is shown inline, like a plain line of chat.
  tidy(frag);
  if (frag.childNodes.length === 1 && frag.firstChild.nodeName === 'P') frag.replaceChildren(...frag.firstChild.childNodes);
  if (me && me.username) highlightMentions(frag, me.username.toLowerCase(), roomMention);
  return frag;
}

/** The line breaks markdown-it puts between blocks would show under pre-wrap: drop them. */
function tidy(root) {
  for (const n of [...root.childNodes]) {
    if (n.nodeType === Node.TEXT_NODE && !n.nodeValue.trim()) n.remove();
  }
  for (const box of root.querySelectorAll('ul, ol, li, blockquote')) {
    for (const n of [...box.childNodes]) if (n.nodeType === Node.TEXT_NODE && !n.nodeValue.trim() && n.nodeValue.includes('\n')) n.remove();
  }
  for (const code of root.querySelectorAll('pre > code')) {
    const last = code.lastChild;
    if (last && last.nodeType === Node.TEXT_NODE) last.nodeValue = last.nodeValue.replace(/\n$/, '');
  }
}

function highlightMentions(root, username, roomMention) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const hits = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.nodeValue.includes('@') && !n.parentElement?.closest('code, a')) hits.push(n);
  }
  const re = /@([A-Za-z][A-Za-z0-9_-]*)/g;
  for (const node of hits) {
    const text = node.nodeValue;
    const out = [];
    let last = 0;
    for (let m; (m = re.exec(text));) {
      const who = m[1].toLowerCase();
      if (who !== username && !(roomMention && who === 'room')) continue;
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(el('span', { class: 'mention-me', text: m[0] }));
      last = m.index + m[0].length;
    }
    if (!out.length) continue;
    if (last < text.length) out.push(text.slice(last));
    node.replaceWith(...out);
  }
}

/** Plain text of a body (for notifications and previews): the Markdown source, shortened. */
export function excerpt(text, max = 120) {
  const s = String(text || '').replace(/\s+/g, ' ').trim();
  return s.length > max ? s.slice(0, max) + '…' : s;
}
