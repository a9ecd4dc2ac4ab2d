// Shared state of the web page: the one `state` object, constants and `$`.

export const PAGE = 50;          // first page and older pages
export const CATCH_UP_PAGE = 200; // the protocol's maximum, for recovery after a reconnect
export const GROUP_WINDOW_MS = 5 * 60_000;
export const TRANSIENT = new Set(['closed', 'not_connected', 'timeout', 'stopped']);

export const $ = (id) => document.getElementById(id);

export const state = {
  me: null,
  rooms: new Map(),      // id -> RoomState
  current: null,         // open room id
  conn: null,
  seen: null,
  outbox: null,
  features: new Set(['typing', 'read']), // optional client frames; dropped when the server answers unknown_type
  presence: new Map(),   // user id -> true (online) | false, from members lists and presence frames
  members: new Map(),    // room id -> [Member], fetched when needed (members panel, direct conversations)
  membersOpen: false,    // the members panel is shown
  editing: null,         // {room, seq, draft, busy}: the message being edited in place
  listCache: new Map(),  // reconcile cache of the open room's message list
  listRoom: null,
  roomItems: new Map(),  // id -> {li, btn, name, badge}
  connState: 'stopped',
  everConnected: false,
  helloCount: 0,
  dialogOpener: null,
  invites: new Map(),    // room id -> {room, invited_by, at}: invitations not answered yet
  limits: { max_message_bytes: 4096 }, // replaced by GET /api/v1/config at boot    // what gets focus back when a dialog closes
};

/** Whether `body` fits the server's message limit; says why not with a toast-ready text. */
export function tooLong(body) {
  const bytes = new TextEncoder().encode(body).length;
  const max = state.limits.max_message_bytes;
  return bytes > max ? `That message is too long (${bytes} bytes; the limit is ${max}).` : null;
}
