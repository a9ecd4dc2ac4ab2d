// Unread navigation, keyboard paths and accessibility (axe-core, light and dark).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import {
  launch, newPage, register, uniq, createRoom, joinPublicRoom, openRoom, sendMessage, expectExactly, screenshot, waitConnected,
} from './helpers.js';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const focused = (page) => page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute('aria-label') || '');

/** Runs axe-core in the page (evaluated through the DevTools protocol, so the page's CSP stays as it is). */
async function axe(page, label) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const lines = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  assert.deepEqual(lines, [], `${label}: axe-core violations`);
}

test('axe-core finds no violations on the login page and the app, light and dark', async () => {
  const { page, context, problems } = await newPage(browser);
  for (const scheme of ['light', 'dark']) {
    // Reduced motion: the 120 ms colour transitions would otherwise be caught half-way by axe's contrast check.
    await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
    await page.goto('/');
    await page.locator('#auth-screen').waitFor({ state: 'visible' });
    await axe(page, `login page, ${scheme}`);
    await screenshot(page, `axe-login-${scheme}`);
  }
  const me = uniq('ada');
  await register(page, me);
  const other = await newPage(browser);
  const peer = uniq('bea');
  await register(other.page, peer);
  const room = uniq('axe');
  await createRoom(page, room);
  await joinPublicRoom(other.page, room);
  await sendMessage(page, `hello @${peer}`);
  await sendMessage(other.page, 'hi there');
  await expectExactly(page, 'hi there');
  await page.getByRole('button', { name: 'Members', exact: true }).click();
  await page.locator('#online-list li.member').nth(1).waitFor();
  for (const scheme of ['light', 'dark']) {
    // Reduced motion: the 120 ms colour transitions would otherwise be caught half-way by axe's contrast check.
    await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
    await axe(page, `app with members panel, ${scheme}`);
    await screenshot(page, `axe-app-${scheme}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  assert.deepEqual(problems(), []);
  await context.close();
  await other.context.close();
});

test('focus is in the composer after login; Ctrl+K switches rooms; Alt+↑/↓ step through them; Esc closes', async () => {
  const { page, context, problems } = await newPage(browser);
  const me = uniq('kay');
  await register(page, me);
  const r1 = uniq('alpha');
  const r2 = uniq('beta');
  await createRoom(page, r1);
  await createRoom(page, r2);
  // Log in again: the first room opens with the composer focused.
  await page.reload();
  await page.locator('#room-title').filter({ hasText: /alpha|beta/ }).waitFor();
  await page.waitForFunction(() => document.activeElement?.id === 'composer-input');

  await page.keyboard.press('Control+k');
  const sw = page.getByRole('dialog', { name: 'Go to a room' });
  await sw.waitFor();
  assert.equal(await focused(page), 'switcher-input');
  await page.keyboard.type(r1.slice(0, 8));
  await sw.locator('[role="option"][aria-selected="true"]', { hasText: r1 }).waitFor();
  await screenshot(page, 'desktop-light-switcher');
  await page.keyboard.press('Enter');
  await sw.waitFor({ state: 'hidden' });
  await page.locator('#room-title', { hasText: r1 }).waitFor();
  assert.equal(await focused(page), 'composer-input');

  // Esc closes the switcher and gives focus back.
  await page.keyboard.press('Control+k');
  await sw.waitFor();
  await page.keyboard.press('Escape');
  await sw.waitFor({ state: 'hidden' });
  assert.equal(await focused(page), 'composer-input');

  // Alt+↓ / Alt+↑: next and previous room in sidebar order.
  const order = await page.$$eval('#room-list .room-name', (ns) => ns.map((n) => n.textContent));
  const at = order.indexOf(r1);
  await page.keyboard.press('Alt+ArrowDown');
  await page.locator('#room-title', { hasText: order[(at + 1) % order.length] }).waitFor();
  await page.keyboard.press('Alt+ArrowUp');
  await page.locator('#room-title', { hasText: r1 }).waitFor();
  assert.deepEqual(problems(), []);
  await context.close();
});

test('↑ in the empty composer edits your last message', async () => {
  const { page, context, problems } = await newPage(browser);
  await register(page, uniq('ed'));
  await createRoom(page, uniq('edits'));
  await sendMessage(page, 'first');
  await sendMessage(page, 'second with a typo');
  await expectExactly(page, 'second with a typo');
  await page.locator('#composer-input').focus();
  await page.keyboard.press('ArrowUp');
  const editor = page.getByRole('textbox', { name: 'Edit message' });
  await editor.waitFor();
  assert.equal(await editor.inputValue(), 'second with a typo');
  await editor.fill('second, fixed');
  await editor.press('Enter');
  await expectExactly(page, 'second, fixed');
  assert.deepEqual(problems(), []);
  await context.close();
});

test('a "new messages" divider marks the first unread; jump to it when it is older than the page; member count is live', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const c = await newPage(browser);
  const reader = uniq('rita');
  const writer = uniq('will');
  await register(a.page, reader);
  await register(b.page, writer);
  await register(c.page, uniq('cleo'));
  const busy = uniq('busy');
  const quiet = uniq('quiet');
  await createRoom(b.page, busy);
  await joinPublicRoom(a.page, busy);
  await createRoom(a.page, quiet);
  // The header's member count follows joins without opening the members panel.
  await openRoom(a.page, busy);
  await a.page.locator('#room-meta', { hasText: '2 members' }).waitFor();
  await joinPublicRoom(c.page, busy);
  await a.page.locator('#room-meta', { hasText: '3 members' }).waitFor();

  // A few unread: the divider sits right before the first of them.
  await openRoom(a.page, quiet);
  for (let i = 1; i <= 3; i++) await sendMessage(b.page, `few ${i}`);
  await expectExactly(b.page, 'few 3');
  await a.page.locator('#room-list .room-btn.has-unread', { hasText: busy }).waitFor();
  await openRoom(a.page, busy);
  const divider = a.page.locator('#message-list li.new-divider');
  await divider.waitFor();
  assert.equal(await divider.evaluate((d) => d.nextElementSibling?.querySelector('.msg-body')?.textContent), 'few 1');
  await screenshot(a.page, 'desktop-light-unread-divider');

  // More unread than one page: "Jump to first unread" loads older pages up to the divider.
  await openRoom(a.page, quiet);
  await b.page.evaluate(async ({ room, n }) => {
    for (let i = 1; i <= n; i++) {
      const r = await fetch(`/api/v1/rooms/${room}/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body: `many ${i}` }),
      });
      if (!r.ok) throw new Error(`send ${i}: ${r.status}`);
    }
  }, { room: busy, n: 70 });
  // A fresh page holds only the newest page of the room.
  await a.page.reload();
  await waitConnected(a.page);
  await a.page.locator('#room-list .room-btn.has-unread', { hasText: busy }).waitFor();
  await openRoom(a.page, busy);
  const jump = a.page.getByRole('button', { name: 'Jump to first unread' });
  await jump.waitFor();
  await jump.click();
  await divider.waitFor();
  assert.equal(await divider.evaluate((d) => d.nextElementSibling?.querySelector('.msg-body')?.textContent), 'many 1');
  await jump.waitFor({ state: 'hidden' });
  for (const p of [a, b, c]) assert.deepEqual(p.problems(), []);
  for (const p of [a, b, c]) await p.context.close();
});
