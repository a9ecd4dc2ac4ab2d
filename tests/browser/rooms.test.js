// Rooms and account: private rooms and invitations, leaving, display names, logout, keyboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, login, uniq, createRoom, sendMessage, expectExactly, openRoom,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('private room: invite, join by name, chat, leave', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const owner = uniq('grace');
  const guest = uniq('heidi');
  const secret = uniq('secret');
  await register(a.page, owner);
  await register(b.page, guest);
  await createRoom(a.page, secret, 'private');
  assert.match(await a.page.locator('#room-meta').textContent(), /Private room/);

  // Not listed among public rooms, and not joinable before the invitation.
  await b.page.getByRole('button', { name: 'Browse and join rooms' }).click();
  const browse = b.page.getByRole('dialog', { name: 'Browse rooms' });
  await browse.locator('#public-list').filter({ hasNotText: 'Loading' }).waitFor();
  assert.equal(await browse.getByRole('button', { name: `Join #${secret}` }).count(), 0);
  await browse.getByLabel('Room name').fill(secret);
  await browse.getByRole('button', { name: 'Join', exact: true }).click();
  await browse.locator('.form-error').filter({ hasText: /No such room/ }).waitFor();
  await b.page.keyboard.press('Escape');
  await browse.waitFor({ state: 'hidden' });

  // Invite, then join by name.
  await a.page.getByRole('button', { name: 'Invite someone' }).click();
  const inv = a.page.getByRole('dialog', { name: /Invite someone/ });
  await inv.getByLabel('Username').fill(guest);
  await inv.getByRole('button', { name: 'Invite' }).click();
  await inv.locator('.form-ok').filter({ hasText: `Invited ${guest}` }).waitFor();
  await inv.getByRole('button', { name: 'Close' }).click();

  await b.page.getByRole('button', { name: 'Browse and join rooms' }).click();
  await browse.getByLabel('Room name').fill(secret);
  await browse.getByRole('button', { name: 'Join', exact: true }).click();
  await browse.waitFor({ state: 'hidden' });
  await b.page.locator('#room-title').filter({ hasText: secret }).waitFor();
  await a.page.locator('#message-list li.msg-system', { hasText: `${guest} joined the room` }).waitFor();

  await sendMessage(b.page, 'thanks for the invite');
  await expectExactly(a.page, 'thanks for the invite');

  // Leave: the room disappears from the list, and the other side sees the system line.
  await b.page.getByRole('button', { name: 'Leave room' }).click();
  const leave = b.page.getByRole('dialog', { name: /Leave/ });
  await leave.getByRole('button', { name: 'Leave' }).click();
  await leave.waitFor({ state: 'hidden' });
  await b.page.locator('#room-list .room-btn', { hasText: secret }).waitFor({ state: 'detached' });
  await a.page.locator('#message-list li.msg-system', { hasText: `${guest} left the room` }).waitFor();

  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('display name, logout and login again', async () => {
  const a = await newPage(browser);
  const user = uniq('ivan');
  const room = uniq('misc');
  await register(a.page, user);
  await createRoom(a.page, room);

  // Escape closes a dialog and gives focus back to the button that opened it.
  const profileBtn = a.page.getByRole('button', { name: 'Change display name' });
  await profileBtn.click();
  const dlg = a.page.getByRole('dialog', { name: 'Your profile' });
  await dlg.waitFor();
  await a.page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'hidden' });
  await a.page.waitForFunction(() => document.activeElement?.id === 'profile-btn');

  await profileBtn.click();
  await dlg.getByLabel('Display name').fill('Ivan the Tester');
  await dlg.getByLabel('Display name').press('Enter');
  await dlg.waitFor({ state: 'hidden' });
  await a.page.locator('#me-display').filter({ hasText: 'Ivan the Tester' }).waitFor();
  await a.page.reload();
  await a.page.locator('#me-display').filter({ hasText: 'Ivan the Tester' }).waitFor();
  await sendMessage(a.page, 'named now');
  await expectExactly(a.page, 'named now');
  const li = a.page.locator('#message-list li.msg-text', { hasText: 'named now' });
  assert.equal(await li.locator('.msg-sender').textContent(), 'Ivan the Tester');

  await a.page.getByRole('button', { name: 'Log out' }).click();
  await a.page.locator('#auth-screen').waitFor({ state: 'visible' });
  const me = await a.context.request.get('/api/v1/me');
  assert.equal(me.status(), 401, 'the session is over on the server too');
  await a.page.reload();
  await a.page.locator('#auth-screen').waitFor({ state: 'visible' });

  await a.page.locator('#auth-form').getByLabel('Password', { exact: true }).fill('wrong password!');
  await a.page.locator('#auth-form').getByLabel('Username').fill(user);
  await a.page.locator('#auth-form').getByRole('button', { name: 'Log in' }).click();
  await a.page.locator('#auth-error').filter({ hasText: 'Wrong username or password.' }).waitFor();

  await login(a.page, user.toUpperCase()); // login ignores case
  await openRoom(a.page, room);
  await expectExactly(a.page, 'named now');
  assert.deepEqual(a.problems(), []);
  await a.context.close();
});

test('keyboard only: tab to the composer and send', async () => {
  const a = await newPage(browser);
  const user = uniq('judy');
  await register(a.page, user);
  await createRoom(a.page, uniq('keys'));
  await a.page.locator('#room-list .room-btn').first().focus();
  // Tab forward from the room list until the composer has focus.
  for (let i = 0; i < 15; i++) {
    if (await a.page.evaluate(() => document.activeElement?.id === 'composer-input')) break;
    await a.page.keyboard.press('Tab');
  }
  assert.equal(await a.page.evaluate(() => document.activeElement?.id), 'composer-input');
  await a.page.keyboard.type('typed without a mouse');
  await a.page.keyboard.press('Enter');
  await expectExactly(a.page, 'typed without a mouse');
  assert.deepEqual(a.problems(), []);
  await a.context.close();
});

// The server updates live connections (user_updated): no reconnect is needed for a new name.
test('a new display name is on messages sent without reconnecting', async () => {
  const a = await newPage(browser);
  await register(a.page, uniq('kim'));
  await createRoom(a.page, uniq('rename'));
  await a.page.getByRole('button', { name: 'Change display name' }).click();
  const dlg = a.page.getByRole('dialog', { name: 'Your profile' });
  await dlg.getByLabel('Display name').fill('Kim Renamed');
  await dlg.getByRole('button', { name: 'Save' }).click();
  await dlg.waitFor({ state: 'hidden' });
  await sendMessage(a.page, 'after rename');
  await expectExactly(a.page, 'after rename');
  const li = a.page.locator('#message-list li.msg-text', { hasText: 'after rename' });
  try {
    assert.equal(await li.locator('.msg-sender').textContent(), 'Kim Renamed');
  } finally {
    await a.context.close();
  }
});
