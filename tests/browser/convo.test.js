// Issue 14 on the web page: replies from the message menu and the thread panel, live reactions,
// Markdown with inert script/javascript text, pins, notification levels and badges, desktop
// notifications for mentions (permission granted in the test context) and the favicon badge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, uniq, createRoom, joinPublicRoom, openRoom, sendMessage, expectExactly, screenshot,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** alice creates a room, bob joins it; both pages are open on it. */
async function pair(options = {}) {
  const a = await newPage(browser);
  const b = await newPage(browser, options);
  const alice = uniq('alice');
  const bob = uniq('bob');
  const room = uniq('convo');
  await register(a.page, alice);
  await register(b.page, bob);
  await createRoom(a.page, room);
  await joinPublicRoom(b.page, room);
  await a.page.locator('#message-list li.msg-system', { hasText: `${bob} joined the room` }).waitFor();
  return { a, b, alice, bob, room };
}

const item = (page, text) => page.locator('#message-list li.msg-text', { has: page.locator('.msg-body', { hasText: text }) });

test('reply from the message menu: the quote shows on both sides, the root counts it, the thread panel lists it', async () => {
  const { a, b, alice, bob } = await pair();
  await sendMessage(a.page, 'which database do we use?');
  await expectExactly(b.page, 'which database do we use?');

  const parent = item(b.page, 'which database do we use?');
  await parent.hover();
  await parent.getByRole('button', { name: 'Reply', exact: true }).click();
  await b.page.locator('#reply-bar', { hasText: `Replying to ${alice}` }).waitFor();
  await sendMessage(b.page, 'PostgreSQL in production');
  await b.page.locator('#reply-bar').waitFor({ state: 'hidden' });

  for (const page of [a.page, b.page]) {
    const reply = item(page, 'PostgreSQL in production');
    await reply.locator('.msg-quote', { hasText: 'which database do we use?' }).waitFor();
    assert.equal(await reply.locator('.msg-quote-sender').textContent(), alice);
    await item(page, 'which database do we use?').locator('.thread-summary', { hasText: '1 reply' }).waitFor();
  }
  await screenshot(a.page, 'convo-reply-quote');

  // The quote jumps to the parent; the summary opens the thread panel.
  await item(a.page, 'PostgreSQL in production').locator('.msg-quote').click();
  await a.page.locator('#message-list li.msg-flash', { hasText: 'which database do we use?' }).waitFor();
  await item(a.page, 'which database do we use?').locator('.thread-summary').click();
  const panel = a.page.locator('#convo-panel');
  await panel.locator('li.msg-text', { hasText: 'PostgreSQL in production' }).waitFor();
  assert.equal(await panel.locator('li.msg-text').count(), 2, 'root and one reply');
  // A new reply arrives live in the open thread.
  const again = item(b.page, 'PostgreSQL in production');
  await again.hover();
  await again.getByRole('button', { name: 'Reply', exact: true }).click();
  await sendMessage(b.page, 'and SQLite by default');
  await panel.locator('li.msg-text', { hasText: 'and SQLite by default' }).waitFor();
  await item(a.page, 'which database do we use?').locator('.thread-summary', { hasText: '2 replies' }).waitFor();
  await screenshot(a.page, 'convo-thread-panel');
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  void bob;
  await a.context.close();
  await b.context.close();
});

test('reactions: picker, live counts on the other side, own highlighted, toggle', async () => {
  const { a, b } = await pair();
  await sendMessage(a.page, 'ship it?');
  await expectExactly(b.page, 'ship it?');

  const theirs = item(b.page, 'ship it?');
  await theirs.hover();
  await theirs.getByRole('button', { name: 'Add reaction' }).click();
  await b.page.getByRole('dialog', { name: 'Add a reaction' }).locator('button[data-emoji="👍"]').click();

  const chipA = item(a.page, 'ship it?').locator('.reaction[data-emoji="👍"]');
  await chipA.locator('.reaction-count', { hasText: /^1$/ }).waitFor();
  assert.equal(await chipA.getAttribute('aria-pressed'), 'false', 'not alice\'s reaction');
  const chipB = theirs.locator('.reaction[data-emoji="👍"]');
  assert.equal(await chipB.getAttribute('aria-pressed'), 'true', 'bob\'s own reaction is highlighted');

  await chipA.click(); // alice adds hers by toggling the chip
  await chipB.locator('.reaction-count', { hasText: /^2$/ }).waitFor();
  await a.page.waitForFunction(() => document.querySelector('#message-list .reaction[data-emoji="👍"]')?.getAttribute('aria-pressed') === 'true');
  await screenshot(b.page, 'convo-reactions');

  await chipB.click(); // bob takes his back
  await chipA.locator('.reaction-count', { hasText: /^1$/ }).waitFor();
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('Markdown renders (emphasis, code, links) while <script> and javascript: stay inert text', async () => {
  const { a, b } = await pair();
  const body = '**bold** _soft_ ~~gone~~ `x < y` see https://example.com/docs and [click](javascript:window.__pwned=1) '
    + '<script>window.__pwned=2</script> <img src=x onerror="window.__pwned=3">\n\n> quoted\n\n- one\n- two\n\n```\nfn main() {}\n```';
  await sendMessage(a.page, body);
  for (const page of [a.page, b.page]) {
    const msg = page.locator('#message-list li.msg-text:not(.msg-pending) .msg-body', { hasText: 'bold' });
    await msg.locator('strong', { hasText: 'bold' }).waitFor();
    await msg.locator('em', { hasText: 'soft' }).waitFor();
    await msg.locator('s', { hasText: 'gone' }).waitFor();
    await msg.locator('code', { hasText: 'x < y' }).waitFor();
    await msg.locator('blockquote', { hasText: 'quoted' }).waitFor();
    assert.equal(await msg.locator('ul > li').count(), 2);
    await msg.locator('pre code', { hasText: 'fn main() {}' }).waitFor();
    const link = msg.locator('a[href="https://example.com/docs"]');
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await msg.locator('a').count(), 1, 'the javascript: link is not a link');
    assert.equal(await msg.locator('script, img').count(), 0);
    assert.match(await msg.textContent(), /<script>window.__pwned=2<\/script>/, 'the tag is shown as text');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  }
  await screenshot(b.page, 'convo-markdown');
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('pins: the owner pins from the message menu, everyone lists the pins', async () => {
  const { a, b, alice } = await pair();
  await sendMessage(a.page, 'the release checklist');
  await expectExactly(b.page, 'the release checklist');
  const mine = item(a.page, 'the release checklist');
  await mine.hover();
  await mine.getByRole('button', { name: 'Pin message' }).click();
  await b.page.locator('#message-list li.msg-system', { hasText: `${alice} pinned message #` }).waitFor();
  // Members have no pin button.
  await item(b.page, 'the release checklist').hover();
  assert.equal(await item(b.page, 'the release checklist').getByRole('button', { name: 'Pin message' }).count(), 0);

  await b.page.getByRole('button', { name: 'Pinned messages' }).click();
  const panel = b.page.locator('#convo-panel');
  await panel.locator('li.pin-item', { hasText: 'the release checklist' }).waitFor();
  await panel.locator('.pin-by', { hasText: `Pinned by ${alice}` }).waitFor();
  await screenshot(b.page, 'convo-pins');

  await mine.hover();
  await mine.getByRole('button', { name: 'Unpin message' }).click();
  await panel.locator('li.pin-item').waitFor({ state: 'detached' });
  await b.page.locator('#convo-status', { hasText: 'Nothing is pinned' }).waitFor();
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('notification level and mute change the badges; a mention notifies while the tab is hidden', async () => {
  const { a, b, bob, room } = await pair({ permissions: ['notifications'] });
  // Record notifications (Chromium's headless ones are not observable otherwise).
  await b.page.evaluate(() => {
    window.__notes = [];
    const N = window.Notification;
    window.Notification = class extends N {
      constructor(title, opts) { window.__notes.push({ title, body: opts?.body }); super(title, opts); }
    };
  });
  // bob: notify about mentions only, and turn desktop notifications on (a user gesture).
  await b.page.getByRole('button', { name: 'Room settings' }).click();
  const dlg = b.page.getByRole('dialog', { name: /Settings of/ });
  await dlg.getByLabel('Notify me about').selectOption('mentions');
  await dlg.locator('#notify-ok', { hasText: 'mentions only' }).waitFor();
  // The permission is granted by the test context, so the page has nothing to ask for.
  await dlg.locator('#desktop-notify-state', { hasText: 'Desktop notifications are on' }).waitFor();
  assert.equal(await dlg.getByRole('button', { name: 'Enable desktop notifications' }).isHidden(), true);
  await screenshot(b.page, 'convo-notify-settings');
  await dlg.getByRole('button', { name: 'Close' }).click();

  // bob reads another room; alice writes in the first one.
  const side = uniq('side');
  await createRoom(b.page, side);
  const btn = b.page.locator('#room-list .room-btn', { has: b.page.locator('.room-name', { hasText: new RegExp(`^${room}$`) }) });
  assert.equal(await btn.getAttribute('data-notify'), 'mentions');
  await sendMessage(a.page, 'plain chatter');
  await expectExactly(a.page, 'plain chatter');
  await sendMessage(a.page, `@${bob} please look`);
  await btn.locator('.mention-badge', { hasText: '@1' }).waitFor();
  assert.equal(await btn.locator('.badge').isHidden(), true, 'no unread badge at the mentions level');
  await b.page.waitForFunction(() => document.documentElement.dataset.mentionBadge === '1');
  await b.page.waitForFunction(() => document.querySelector('link[rel="icon"]').href.startsWith('data:image/png'));
  await screenshot(b.page, 'convo-badges-mentions');

  // Muted: no badge at all, and the favicon is plain again.
  await openRoom(b.page, room);
  await b.page.getByRole('button', { name: 'Room settings' }).click();
  await dlg.getByLabel(/Mute this room/).check();
  await dlg.locator('#notify-ok', { hasText: 'Muted' }).waitFor();
  await dlg.getByRole('button', { name: 'Close' }).click();
  await openRoom(b.page, side);
  await sendMessage(a.page, `@${bob} again`);
  await expectExactly(a.page, `@${bob} again`);
  await b.page.waitForFunction(() => document.documentElement.dataset.mentionBadge === '0');
  assert.equal(await btn.locator('.mention-badge').isHidden(), true);
  assert.equal(await b.page.evaluate(() => window.__notes.length), 0, 'nothing shown while visible or muted');

  // Unmuted at "all", tab hidden: a mention shows a desktop notification.
  await openRoom(b.page, room);
  await b.page.getByRole('button', { name: 'Room settings' }).click();
  await dlg.getByLabel(/Mute this room/).uncheck();
  await dlg.getByLabel('Notify me about').selectOption('all');
  await dlg.locator('#notify-ok', { hasText: 'all messages' }).waitFor();
  await dlg.getByRole('button', { name: 'Close' }).click();
  await b.page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
  });
  await sendMessage(a.page, `@${bob} deploy is done`);
  await b.page.waitForFunction(() => window.__notes.length === 1);
  const note = await b.page.evaluate(() => window.__notes[0]);
  assert.match(note.title, /mentioned you/);
  assert.match(note.body, /deploy is done/);
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});
