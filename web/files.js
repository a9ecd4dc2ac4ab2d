// Attachments in the page (docs/PROTOCOL.md §2 File, §4 uploads): a file button, drag-and-drop onto the
// chat and paste into the composer upload each file with a progress bar (XHR upload progress), then
// send a message sharing it. Messages show images inline (click for a lightbox) and other files as chips
// with name and size that download. Every name and type is set as text or an attribute, never as HTML.

const BASE = '/api/v1';

function make(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === 'text') n.textContent = v;
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v);
  }
  n.append(...children.filter(Boolean));
  return n;
}

export function humanSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The files a message shares, as a list: inline images and download chips. */
export function fileList(files) {
  const list = make('ul', { class: 'msg-files', 'aria-label': 'Files' });
  for (const f of files) {
    const label = `${f.name} (${humanSize(f.size)})`;
    if (f.inline) {
      // The server's thumbnail when it made one (at most 320 px a side); the full image in the lightbox.
      const t = f.thumbnail;
      const img = t ? make('img', {
        class: 'file-preview', src: t.url, alt: f.name, loading: 'lazy', width: t.width, height: t.height,
      }) : make('img', {
        class: 'file-preview', src: f.url, alt: f.name, loading: 'lazy',
        width: f.width ? Math.min(f.width, 320) : null,
        height: f.width && f.height ? Math.round(f.height * Math.min(f.width, 320) / f.width) : null,
      });
      list.append(make('li', {}, make('button', {
        class: 'file-image', type: 'button', title: label, 'aria-label': `Open image ${label}`,
        onclick: () => openLightbox(f),
      }, img)));
    } else {
      list.append(make('li', {}, make('a', { class: 'file-chip', href: f.url, download: f.name, title: `Download ${label}` },
        make('span', { class: 'file-name', text: f.name }),
        make('span', { class: 'file-size muted', text: humanSize(f.size) }))));
    }
  }
  return list;
}

function openLightbox(f) {
  let dlg = document.getElementById('lightbox');
  if (!dlg) {
    dlg = make('dialog', { id: 'lightbox', class: 'lightbox', 'aria-label': 'Image' });
    dlg.addEventListener('click', () => dlg.close());
    document.body.append(dlg);
  }
  dlg.replaceChildren(
    make('img', { src: f.url, alt: f.name }),
    make('p', { class: 'lightbox-caption', text: `${f.name} (${humanSize(f.size)})` }),
    make('a', { class: 'btn', href: f.url, download: f.name, text: 'Download', onclick: (e) => e.stopPropagation() }),
  );
  dlg.showModal();
}

/** Uploads `file` into room `roomId`, reporting progress (0..1); resolves with the File object. */
export function uploadFile(roomId, file, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', `${BASE}/rooms/${encodeURIComponent(roomId)}/files?name=${encodeURIComponent(file.name || 'pasted')}`);
    x.setRequestHeader('Accept', 'application/json');
    x.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    x.addEventListener('load', () => {
      let data = null;
      try { data = JSON.parse(x.responseText); } catch { data = null; }
      if (x.status === 201 && data) resolve(data);
      else reject(new Error((data && data.error && data.error.message) || `upload failed (HTTP ${x.status})`));
    });
    x.addEventListener('error', () => reject(new Error('Cannot reach the server.')));
    x.send(file);
  });
}

async function shareFile(roomId, body, fileId) {
  const res = await fetch(`${BASE}/rooms/${encodeURIComponent(roomId)}/messages`, {
    method: 'POST', credentials: 'same-origin', cache: 'no-store',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ body, files: [fileId], client_id: `f-${fileId}` }),
  });
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    throw new Error((data && data.error && data.error.message) || `HTTP ${res.status}`);
  }
}

/**
 * Wires the file button, drag-and-drop and paste. `roomId()` is the open room's id (or null),
 * `notify(message, kind)` shows a toast.
 */
export function wireFiles({ roomId, notify }) {
  const composer = document.getElementById('composer');
  const input = document.getElementById('composer-input');
  const chat = document.getElementById('chat');
  const uploads = make('ul', { id: 'uploads', class: 'uploads', 'aria-live': 'polite', 'aria-label': 'Uploads' });
  composer.before(uploads);
  const picker = make('input', { id: 'file-input', type: 'file', multiple: '', hidden: '' });
  const button = make('button', { id: 'attach-btn', class: 'btn attach-btn', type: 'button', 'aria-label': 'Attach files', title: 'Attach files', text: '📎' });
  button.addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => { send([...picker.files]); picker.value = ''; });
  composer.prepend(picker, button);

  async function one(room, file) {
    const bar = make('progress', { max: '1', value: '0', 'aria-label': `Uploading ${file.name || 'file'}` });
    const item = make('li', { class: 'upload' }, make('span', { class: 'upload-name', text: file.name || 'pasted file' }), bar);
    uploads.append(item);
    try {
      const f = await uploadFile(room, file, (p) => { bar.value = p; });
      bar.value = 1;
      await shareFile(room, f.name, f.id);
      item.remove();
    } catch (e) {
      item.classList.add('upload-failed');
      item.append(make('span', { class: 'upload-error', text: e.message }));
      notify(`${file.name || 'File'}: ${e.message}`, 'error');
      setTimeout(() => item.remove(), 8000);
    }
  }

  function send(files) {
    const room = roomId();
    if (room === null || !files.length) return;
    for (const f of files) one(room, f);
  }

  chat.addEventListener('dragover', (e) => {
    if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) { e.preventDefault(); chat.classList.add('dropping'); }
  });
  chat.addEventListener('dragleave', () => chat.classList.remove('dropping'));
  chat.addEventListener('drop', (e) => {
    chat.classList.remove('dropping');
    if (e.dataTransfer && e.dataTransfer.files.length) { e.preventDefault(); send([...e.dataTransfer.files]); }
  });
  input.addEventListener('paste', (e) => {
    const files = e.clipboardData ? [...e.clipboardData.files] : [];
    if (files.length) { e.preventDefault(); send(files); }
  });
}
