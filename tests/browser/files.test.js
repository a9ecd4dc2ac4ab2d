// Files in the page: upload by drag-and-drop and by paste, each with a progress bar; an image shows as
// a preview that opens in a lightbox; a non-image is a chip that downloads as an attachment.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, register, uniq, createRoom } from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// A real 2×1 PNG.
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0In+KAAAAEUlEQVR42mP8z8DwnwEJAAAsAwH/e9WH6AAAAABJRU5ErkJggg==';

/** Records every upload progress bar the page shows, and its last value, as they come and go. */
async function watchProgress(page) {
  await page.evaluate(() => {
    window.__bars = [];
    new MutationObserver(() => {
      for (const p of document.querySelectorAll('#uploads progress')) {
        if (!window.__bars.includes(p)) window.__bars.push(p);
      }
    }).observe(document.body, { subtree: true, childList: true });
  });
}

test('drag-and-drop an image and paste a text file: progress, preview, lightbox, download', async () => {
  const { page, problems } = await newPage(browser);
  await register(page, uniq('fay'));
  await createRoom(page, uniq('files'));
  await watchProgress(page);

  // Drop a PNG onto the chat.
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'dot.png', { type: 'image/png' }));
    const chat = document.getElementById('chat');
    chat.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    chat.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, PNG_B64);
  const img = page.locator('#message-list img.file-preview');
  await img.waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('#message-list img.file-preview');
    return i && i.complete && i.naturalWidth === 2;
  });
  assert.equal(await img.getAttribute('alt'), 'dot.png');
  const bars = await page.evaluate(() => window.__bars.map((p) => [p.getAttribute('aria-label'), p.value]));
  assert.ok(bars.some(([label, value]) => label === 'Uploading dot.png' && value === 1), JSON.stringify(bars));
  assert.equal(await page.locator('#uploads li').count(), 0, 'the finished upload leaves the list');

  // The preview opens a lightbox.
  await page.locator('#message-list button.file-image').click();
  await page.locator('#lightbox[open] img').waitFor();
  assert.match(await page.locator('#lightbox[open] img').getAttribute('src'), /\/content$/, 'the lightbox shows the full image');
  await page.keyboard.press('Escape');
  await page.locator('#lightbox[open]').waitFor({ state: 'detached' }).catch(() => {});
  assert.equal(await page.locator('#lightbox[open]').count(), 0);

  // Paste an HTML file into the composer: it becomes a download chip, never rendered.
  await page.locator('#composer-input').focus();
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['<script>window.__pwned = 1</script>'], 'page.html', { type: 'text/html' }));
    const ev = new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true });
    document.getElementById('composer-input').dispatchEvent(ev);
  });
  const chip = page.locator('#message-list a.file-chip', { hasText: 'page.html' });
  await chip.waitFor();
  const bars2 = await page.evaluate(() => window.__bars.map((p) => p.getAttribute('aria-label')));
  assert.ok(bars2.includes('Uploading page.html'), JSON.stringify(bars2));
  assert.equal(await chip.getAttribute('download'), 'page.html');
  const href = await chip.getAttribute('href');
  const head = await page.evaluate(async (url) => {
    const r = await fetch(url);
    return { status: r.status, cd: r.headers.get('content-disposition'), ct: r.headers.get('content-type'), nosniff: r.headers.get('x-content-type-options') };
  }, href);
  assert.equal(head.status, 200);
  assert.match(head.cd, /^attachment; filename="page.html"/);
  assert.equal(head.nosniff, 'nosniff');
  assert.doesNotMatch(head.ct, /html/);
  // Clicking the chip downloads the file.
  const [download] = await Promise.all([page.waitForEvent('download'), chip.click()]);
  assert.equal(download.suggestedFilename(), 'page.html');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(problems(), []);
});

test('a large image shows as the server-made thumbnail; the lightbox opens the full image', async () => {
  const { page, problems } = await newPage(browser);
  await register(page, uniq('tia'));
  await createRoom(page, uniq('thumbs'));
  // An 800×400 PNG drawn in the page, dropped onto the chat.
  await page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 800; c.height = 400;
    const g = c.getContext('2d');
    g.fillStyle = '#2a6'; g.fillRect(0, 0, 800, 400);
    g.fillStyle = '#fff'; g.fillRect(100, 100, 200, 100);
    const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'wide.png', { type: 'image/png' }));
    const chat = document.getElementById('chat');
    chat.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    chat.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  const img = page.locator('#message-list img.file-preview[alt="wide.png"]');
  await img.waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('#message-list img.file-preview[alt="wide.png"]');
    return i && i.complete && i.naturalWidth > 0;
  });
  assert.match(await img.getAttribute('src'), /\/thumbnail$/, 'the preview is the server-made thumbnail');
  const size = await img.evaluate((i) => [i.naturalWidth, i.naturalHeight]);
  assert.deepEqual(size, [320, 160], 'the thumbnail is at most 320 px a side, in proportion');
  await page.locator('#message-list button.file-image').click();
  await page.locator('#lightbox[open] img').waitFor();
  assert.match(await page.locator('#lightbox[open] img').getAttribute('src'), /\/content$/, 'the lightbox shows the full image');
  assert.deepEqual(problems(), []);
});
