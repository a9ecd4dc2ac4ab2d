// Moderation and room settings from the page: roles, kick, ban/unban, ownership, topic, rename,
// visibility, retention, webhooks, leave — each offered only to those allowed, each confirmed.
//
// Tests marked (domain) use endpoints of the cross-helper contract (bans list, ownership transfer,
// visibility in PATCH): they pass once the server implements them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, uniq, createRoom, joinPublicRoom, screenshot,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Owner `a` in a fresh public room that `b` joined; both pages open on it. */
async function roomWithTwo() {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const owner = uniq('olga');
  const other = uniq('walt');
  const room = uniq('mod');
  await register(a.page, owner);
  await register(b.page, other);
  await createRoom(a.page, room);
  await joinPublicRoom(b.page, room);
  await a.page.locator('#message-list li.msg-system', { hasText: `${other} joined the room` }).waitFor();
  return { a, b, owner, other, room };
}

function memberItem(page, username) {
  return page.locator(`#members-panel li.member[data-username="${username}"]`);
}

async function openMembers(page) {
  if ((await page.locator('#members-btn').getAttribute('aria-expanded')) !== 'true') {
    await page.getByRole('button', { name: 'Members', exact: true }).click();
  }
  await page.locator('#online-list li.member').first().waitFor();
}

/** Manage → action → confirm, from the members panel. */
async function moderate(page, username, display, action, confirmLabel) {
  await openMembers(page);
  await memberItem(page, username).getByRole('button', { name: `Manage ${display}` }).click();
  const dlg = page.getByRole('dialog', { name: new RegExp(display) });
  await dlg.getByRole('button', { name: action }).click();
  const confirm = page.locator('#confirm-dialog');
  await confirm.waitFor({ state: 'visible' });
  await confirm.getByRole('button', { name: confirmLabel, exact: true }).click();
  await confirm.waitFor({ state: 'hidden' });
}

test('the owner makes a member admin and member again, removes and bans them; a member is offered nothing', async () => {
  const { a, b, other } = await roomWithTwo();
  // Bob (a plain member) gets no moderation controls on anyone.
  await openMembers(b.page);
  assert.equal(await b.page.locator('#members-panel .member-manage').count(), 0);

  await moderate(a.page, other, other, 'Make admin', 'Make admin');
  await memberItem(a.page, other).locator('.role-badge', { hasText: 'Admin' }).waitFor();
  await a.page.locator('#message-list li.msg-system', { hasText: /admin/ }).waitFor();
  await moderate(a.page, other, other, 'Make member', 'Make member');
  await memberItem(a.page, other).locator('.role-badge').waitFor({ state: 'detached' });

  // Cancel keeps everything as it was.
  await memberItem(a.page, other).getByRole('button', { name: `Manage ${other}` }).click();
  await a.page.getByRole('dialog', { name: new RegExp(other) }).getByRole('button', { name: 'Remove from room' }).waitFor();
  await screenshot(a.page, 'desktop-light-member-actions');
  await a.page.getByRole('dialog', { name: new RegExp(other) }).getByRole('button', { name: 'Remove from room' }).click();
  await screenshot(a.page, 'desktop-light-confirm-kick');
  await a.page.locator('#confirm-dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await memberItem(a.page, other).count(), 1);

  await moderate(a.page, other, other, 'Remove from room', 'Remove');
  await memberItem(a.page, other).waitFor({ state: 'detached' });
  await b.page.locator('.toast', { hasText: /removed you from/ }).waitFor();
  await a.page.locator('#room-meta', { hasText: '1 member' }).waitFor();

  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('(domain) ban, then the banned list in room settings, and unban from there', async () => {
  const { a, b, other, room } = await roomWithTwo();
  await moderate(a.page, other, other, 'Ban', 'Ban');
  await b.page.locator('.toast', { hasText: /banned you from/ }).waitFor();
  await a.page.getByRole('button', { name: 'Room settings' }).click();
  const dlg = a.page.getByRole('dialog', { name: `Settings of #${room}` });
  await dlg.locator('#ban-list li', { hasText: other }).waitFor();
  await screenshot(a.page, 'desktop-light-settings-bans');
  await dlg.getByRole('button', { name: `Unban ${other}` }).click();
  await a.page.locator('#confirm-dialog').getByRole('button', { name: 'Unban', exact: true }).click();
  await dlg.locator('#ban-empty').waitFor({ state: 'visible' });
  await joinPublicRoom(b.page, room); // welcome back
  assert.deepEqual(a.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('(domain) the owner hands the room over; the new owner is shown as such', async () => {
  const { a, b, owner, other } = await roomWithTwo();
  await moderate(a.page, other, other, 'Transfer ownership', 'Transfer');
  await memberItem(a.page, other).locator('.role-badge', { hasText: 'Owner' }).waitFor();
  await memberItem(a.page, owner).locator('.role-badge', { hasText: 'Admin' }).waitFor();
  await openMembers(b.page);
  await memberItem(b.page, owner).getByRole('button', { name: `Manage ${owner}` }).waitFor();
  await a.context.close();
  await b.context.close();
});

test('room settings: topic, rename, retention, webhooks; a member sees them read-only and can leave', async () => {
  const { a, b, room } = await roomWithTwo();
  await a.page.getByRole('button', { name: 'Room settings' }).click();
  let dlg = a.page.getByRole('dialog', { name: `Settings of #${room}` });
  await dlg.getByLabel('Topic').fill('Release day');
  await dlg.getByLabel('Keep messages').selectOption({ label: '30 days' });
  await dlg.getByRole('button', { name: 'Save settings' }).click();
  await dlg.locator('.form-ok', { hasText: 'Saved.' }).waitFor();
  await a.page.locator('#room-meta', { hasText: 'Release day' }).waitFor();
  await b.page.locator('#room-meta', { hasText: 'Release day' }).waitFor();

  // Webhooks: add (the secret is shown once), listed, no failures, delete after confirming.
  await dlg.getByLabel('Webhook URL').fill('https://hooks.example/parley');
  await dlg.getByRole('button', { name: 'Add webhook' }).click();
  await dlg.locator('#webhook-secret', { hasText: 'signing secret' }).waitFor();
  await dlg.locator('#webhook-list li', { hasText: 'https://hooks.example/parley' }).waitFor();
  await dlg.locator('#dead-empty').waitFor({ state: 'visible' });
  await screenshot(a.page, 'desktop-light-room-settings');
  await dlg.getByRole('button', { name: 'Delete webhook https://hooks.example/parley' }).click();
  await a.page.locator('#confirm-dialog').getByRole('button', { name: 'Delete', exact: true }).click();
  await dlg.locator('#webhook-empty').waitFor({ state: 'visible' });

  // Rename: the header and the other page follow.
  const renamed = uniq('renamed');
  await dlg.getByLabel('Name').fill(renamed);
  await dlg.getByRole('button', { name: 'Save settings' }).click();
  await dlg.locator('.form-ok', { hasText: 'Saved.' }).waitFor();
  await a.page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'hidden' });
  await a.page.locator('#room-title', { hasText: renamed }).waitFor();
  await b.page.locator('#room-title', { hasText: renamed }).waitFor();

  // A plain member: read-only settings, and leaving from the dialog.
  await b.page.getByRole('button', { name: 'Room settings' }).click();
  dlg = b.page.getByRole('dialog', { name: `Settings of #${renamed}` });
  await dlg.locator('#settings-readonly').waitFor({ state: 'visible' });
  assert.equal(await dlg.locator('#settings-form').isVisible(), false);
  await dlg.getByRole('button', { name: 'Leave room' }).click();
  const leave = b.page.getByRole('dialog', { name: /Leave/ });
  await leave.getByRole('button', { name: 'Leave' }).click();
  await b.page.locator('#room-list .room-btn', { hasText: renamed }).waitFor({ state: 'detached' });
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('(domain) the owner makes a public room private from the settings', async () => {
  const { a, b, room } = await roomWithTwo();
  await a.page.getByRole('button', { name: 'Room settings' }).click();
  const dlg = a.page.getByRole('dialog', { name: `Settings of #${room}` });
  await dlg.getByLabel(/Private/).check();
  await dlg.getByRole('button', { name: 'Save settings' }).click();
  await dlg.locator('.form-ok', { hasText: 'Saved.' }).waitFor();
  await a.page.locator('#room-meta', { hasText: 'Private room' }).waitFor();
  await b.page.locator('#room-meta', { hasText: 'Private room' }).waitFor();
  await a.context.close();
  await b.context.close();
});

test('(domain) an invitation shows live in the sidebar; accept joins and opens the room, decline drops it', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const owner = uniq('ines');
  const guest = uniq('jon');
  await register(a.page, owner);
  await register(b.page, guest);
  const rooms = [uniq('club'), uniq('other')];
  for (const r of rooms) {
    await createRoom(a.page, r, 'private');
    await a.page.getByRole('button', { name: 'Invite someone' }).click();
    const inv = a.page.getByRole('dialog', { name: /Invite someone/ });
    await inv.getByLabel('Username').fill(guest);
    await inv.getByRole('button', { name: 'Invite' }).click();
    await inv.locator('.form-ok').waitFor();
    await inv.getByRole('button', { name: 'Close' }).click();
  }
  const invites = b.page.locator('#invite-list');
  await invites.locator('li', { hasText: rooms[0] }).waitFor();
  await invites.locator('li', { hasText: rooms[1] }).waitFor();
  await screenshot(b.page, 'desktop-light-invitations');
  await b.page.getByRole('button', { name: `Accept the invitation to #${rooms[0]}` }).click();
  await b.page.locator('#room-title', { hasText: rooms[0] }).waitFor();
  await b.page.getByRole('button', { name: `Decline the invitation to #${rooms[1]}` }).click();
  await b.page.locator('#invites-section').waitFor({ state: 'hidden' });
  // Reloaded: the accepted room is held, the declined one is not offered again.
  await b.page.reload();
  await b.page.locator('#room-list .room-btn', { hasText: rooms[0] }).waitFor();
  assert.equal(await b.page.locator('#invite-list li').count(), 0);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});
