// 1. Two browser contexts register, join the same room and chat both ways.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, uniq, createRoom, joinPublicRoom, openRoom, sendMessage,
  expectExactly, assertNoGapsNoDuplicates,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('two users register, join one room and chat both ways', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const alice = uniq('alice');
  const bob = uniq('bob');
  const room = uniq('lobby');

  await register(a.page, alice);
  await register(b.page, bob);
  await createRoom(a.page, room);
  // The creator sees the "created the room" system line.
  await a.page.locator('#message-list li.msg-system', { hasText: `${alice} created the room` }).waitFor();

  await joinPublicRoom(b.page, room);
  await a.page.locator('#message-list li.msg-system', { hasText: `${bob} joined the room` }).waitFor();
  await b.page.locator('#message-list li.msg-system', { hasText: `${bob} joined the room` }).waitFor();

  await sendMessage(a.page, 'hello from alice');
  await expectExactly(b.page, 'hello from alice');
  await expectExactly(a.page, 'hello from alice');

  // Shift+Enter makes a new line; Enter sends.
  const box = b.page.locator('#composer-input');
  await box.fill('hi alice');
  await box.press('Shift+Enter');
  await box.pressSequentially('second line');
  await box.press('Enter');
  await expectExactly(a.page, 'hi alice\nsecond line');
  await expectExactly(b.page, 'hi alice\nsecond line');
  assert.equal(await box.inputValue(), '');

  // Sender names are shown (bob's message shows his display name on alice's page).
  const bobMsg = a.page.locator('#message-list li.msg-text', { hasText: 'second line' });
  assert.equal(await bobMsg.locator('.msg-sender').textContent(), bob);
  assert.match(await bobMsg.locator('time').getAttribute('datetime'), /^\d{4}-\d\d-\d\dT/);

  // Unread badge: a message in a room that is not open is counted.
  const side = uniq('side');
  await createRoom(a.page, side);
  await joinPublicRoom(b.page, side);
  await openRoom(b.page, room);
  await openRoom(a.page, side);
  await sendMessage(a.page, 'over here');
  await sendMessage(a.page, 'and here');
  const badge = b.page.locator('#room-list .room-btn', { hasText: side }).locator('.badge');
  await badge.filter({ hasText: /^2$/ }).waitFor();
  await openRoom(b.page, side);
  await badge.waitFor({ state: 'hidden' });
  await expectExactly(b.page, 'and here');

  // The message list is an accessible live log.
  const log = a.page.locator('#messages');
  assert.equal(await log.getAttribute('role'), 'log');
  assert.equal(await log.getAttribute('aria-live'), 'polite');

  await assertNoGapsNoDuplicates(a.page);
  await assertNoGapsNoDuplicates(b.page);
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('typing shows on the other page', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const room = uniq('typing');
  const ann = uniq('ann');
  await register(a.page, ann);
  await register(b.page, uniq('ben'));
  await createRoom(a.page, room);
  await joinPublicRoom(b.page, room);
  await a.page.locator('#composer-input').pressSequentially('hel');
  await b.page.locator('#typing').filter({ hasText: `${ann} is typing…` }).waitFor();
  await a.page.locator('#composer-input').press('Enter');
  await expectExactly(b.page, 'hel');
  await b.page.waitForFunction(() => document.getElementById('typing').textContent === ''); // a message ends "typing"
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});
