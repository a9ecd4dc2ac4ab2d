// Toasts, dialogs and the phone-width drawer.

import { describeError } from './api.js';
import { sessionEnded } from './app.js';
import { el, icon } from './render.js';
import { $, state } from './state.js';
// ───────────────────────────── toasts ─────────────────────────────

export function toast(message, kind = 'info') {
  const t = el('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : null },
    el('span', { text: message }),
    el('button', { class: 'icon-btn icon-btn-sm', type: 'button', 'aria-label': 'Dismiss', onclick: () => t.remove() }, icon('i-close', 'icon icon-sm')));
  $('toasts').append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 5000);
}

// ───────────────────────────── dialogs ─────────────────────────────

export function openDialog(dlg, opener = document.activeElement) {
  for (const p of dlg.querySelectorAll('.form-error, .form-ok')) { p.hidden = true; p.textContent = ''; }
  state.dialogOpener = opener;
  dlg.showModal();
}

export function closeDialog(dlg) {
  if (dlg.open) dlg.close();
}

export function closeAllDialogs() {
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
}

export function dialogError(dlg, err) {
  if (err && err.status === 401) { sessionEnded(describeError(err)); return; }
  const p = dlg.querySelector('.form-error');
  p.textContent = typeof err === 'string' ? err : describeError(err);
  p.hidden = false;
}

export function busy(form, on) {
  for (const b of form.querySelectorAll('button')) b.disabled = on;
  form.setAttribute('aria-busy', on ? 'true' : 'false');
}

// ───────────────────────────── drawer (phone widths) ─────────────────────────────

export const narrow = matchMedia('(max-width: 767px)');

export function applyDrawerMode() {
  const open = document.querySelector('.app').classList.contains('drawer-open');
  const sidebar = $('sidebar');
  if (narrow.matches) {
    sidebar.inert = !open;
    $('chat').inert = open;
  } else {
    sidebar.inert = false;
    $('chat').inert = false;
  }
}

export function setDrawer(open) {
  const app = document.querySelector('.app');
  const was = app.classList.contains('drawer-open');
  if (!narrow.matches) open = false;
  app.classList.toggle('drawer-open', open);
  $('drawer-backdrop').hidden = !open;
  $('drawer-open').setAttribute('aria-expanded', String(open));
  applyDrawerMode();
  if (open && !was) ($('sidebar').querySelector('[aria-current="page"]') || $('create-btn')).focus();
  if (!open && was && $('sidebar').contains(document.activeElement)) $('drawer-open').focus();
}
