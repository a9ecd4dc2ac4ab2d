// Shared helpers for Parley's browser tests (node --test + playwright-core + Debian's Chromium).
import { chromium } from 'playwright-core';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BASE = process.env.PARLEY_URL;
if (!BASE) throw new Error('PARLEY_URL is not set: run the tests through tests/browser/run.sh');

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SHOTS = path.resolve(HERE, '../../target/browser');

export const PASSWORD = 'correct horse battery';

// PARLEY_WEB_DIR=web (relative to the repository, or absolute): serve the page's files from that
// directory instead of the copy embedded in the server binary, keeping the server's headers
// (CSP included). For working on web/ without rebuilding the server after every change.
const WEB_DIR = process.env.PARLEY_WEB_DIR ? path.resolve(HERE, '../..', process.env.PARLEY_WEB_DIR) : null;
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

async function serveWebFromDisk(context) {
  await context.route((url) => url.origin === new URL(BASE).origin && !url.pathname.startsWith('/api/') && url.pathname !== '/ws', async (route) => {
    const url = new URL(route.request().url());
    const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname.slice(1));
    const file = path.join(WEB_DIR, rel);
    if (!file.startsWith(WEB_DIR + path.sep) || !fs.existsSync(file)) return route.continue();
    const original = await route.fetch();
    const headers = { ...original.headers(), 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' };
    delete headers['content-length'];
    delete headers['content-encoding'];
    await route.fulfill({ status: 200, headers, body: fs.readFileSync(file) });
  });
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // A page fulfilled by a route has no address space, so Chromium would block its socket to 127.0.0.1.
      ...(WEB_DIR ? ['--disable-features=LocalNetworkAccessChecks'] : []),
    ],
  });
}

/** A short unique suffix, so that tests sharing one server never collide on names. */
export function uniq(prefix) {
  return `${prefix}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A fresh context + page. Collects page errors and CSP violations; `problems()` returns them
 * (tests assert it is empty at the end).
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(30_000); // headroom for a loaded 2-core CI machine
  if (WEB_DIR) await serveWebFromDisk(context);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (msg) => {
    const t = msg.text();
    if (/Content Security Policy|Refused to (load|execute|apply)/i.test(t)) problems.push(`csp: ${t}`);
    else if (msg.type() === 'error' && !/WebSocket|Failed to load resource|ERR_INTERNET_DISCONNECTED|net::/i.test(t)) problems.push(`console: ${t}`);
  });
  return { context, page, problems: () => problems };
}

export async function register(page, username, password = PASSWORD) {
  await page.goto('/');
  await page.locator('#auth-form').getByLabel('Username').fill(username);
  await page.locator('#auth-form').getByLabel('Password', { exact: true }).fill(password);
  await page.locator('#auth-form').getByRole('button', { name: 'Create account' }).click();
  await page.locator('#app-screen').waitFor({ state: 'visible' });
  await waitConnected(page);
}

export async function login(page, username, password = PASSWORD) {
  await page.goto('/');
  await page.locator('#auth-form').getByLabel('Username').fill(username);
  await page.locator('#auth-form').getByLabel('Password', { exact: true }).fill(password);
  await page.locator('#auth-form').getByRole('button', { name: 'Log in' }).click();
  await page.locator('#app-screen').waitFor({ state: 'visible' });
  await waitConnected(page);
}

/** The WebSocket is up once the page has had its `hello` (the page marks <html data-conn="open">). */
export async function waitConnected(page) {
  await page.waitForFunction(() => document.documentElement.dataset.conn === 'open');
  await page.locator('#conn-banner').waitFor({ state: 'hidden' });
}

export async function createRoom(page, name, visibility = 'public') {
  await page.getByRole('button', { name: 'Create a room' }).click();
  const dlg = page.getByRole('dialog', { name: 'Create a room' });
  await dlg.getByLabel('Name').fill(name);
  await dlg.getByLabel(visibility === 'private' ? /Private/ : /Public/).check();
  await dlg.getByRole('button', { name: 'Create' }).click();
  await dlg.waitFor({ state: 'hidden' });
  await page.locator('#room-title').filter({ hasText: name }).waitFor();
}

export async function joinPublicRoom(page, name) {
  await page.getByRole('button', { name: 'Browse and join rooms' }).click();
  const dlg = page.getByRole('dialog', { name: 'Browse rooms' });
  await dlg.getByRole('button', { name: `Join #${name}` }).click();
  await dlg.waitFor({ state: 'hidden' });
  await page.locator('#room-title').filter({ hasText: name }).waitFor();
}

export async function openRoom(page, name) {
  await page.locator('#room-list .room-btn', { has: page.locator('.room-name', { hasText: new RegExp(`^${name}$`) }) }).click();
  await page.locator('#room-title').filter({ hasText: name }).waitFor();
}

export async function sendMessage(page, text) {
  const box = page.locator('#composer-input');
  await box.fill(text);
  await box.press('Enter');
}

/** The stored (acknowledged or received) text messages whose body is exactly `text`. */
export function storedMessages(page, text) {
  return page.locator('#message-list li.msg-text:not(.msg-pending):not(.msg-failed) .msg-body').filter({ hasText: exact(text) });
}

/** All text messages, pending or not, whose body is exactly `text`. */
export function anyMessages(page, text) {
  return page.locator('#message-list li.msg-text .msg-body').filter({ hasText: exact(text) });
}

function exact(text) {
  return new RegExp('^' + text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$');
}

/** Wait until exactly `n` messages with this body are shown and none is pending. */
export async function expectExactly(page, text, n = 1) {
  await page.waitForFunction(([t, n]) => {
    const items = [...document.querySelectorAll('#message-list li.msg-text')]
      .filter((li) => li.querySelector('.msg-body')?.textContent === t);
    return items.length === n && items.every((li) => !li.classList.contains('msg-pending') && !li.classList.contains('msg-failed'));
  }, [text, n]);
}

/** No two list items share a seq, and the seqs held are contiguous. */
export async function assertNoGapsNoDuplicates(page) {
  const seqs = await page.$$eval('#message-list li[data-seq]', (lis) => lis.map((li) => li.dataset.seq).filter(Boolean).map(Number));
  const set = new Set(seqs);
  if (set.size !== seqs.length) throw new Error(`duplicate seqs: ${seqs.join(',')}`);
  const sorted = [...seqs].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] !== sorted[i - 1] + 1) throw new Error(`gap between ${sorted[i - 1]} and ${sorted[i]}`);
  }
  if (JSON.stringify(sorted) !== JSON.stringify(seqs)) throw new Error('messages are not in seq order');
  return seqs;
}

export async function screenshot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  // Settle first: no running CSS transition, no hover from the last click.
  const vp = page.viewportSize();
  if (vp) await page.mouse.move(vp.width - 1, vp.height - 1);
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'));
  await page.screenshot({ path: file });
  return file;
}
