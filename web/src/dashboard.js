// @ts-check
import { api, ApiError } from './lib/api.js';
import { initAuth } from './lib/auth.js';
import { ageSeconds, el, explainError, formatAge, formatTime, stageName, statusWord } from './lib/format.js';

/**
 * The operations dashboard: queue, agents and requests, refreshed every few seconds while the tab is
 * visible. Cancel and retry act on one request and refresh at once.
 */

const REFRESH_MS = 5000;
const PAGE_SIZE = 25;
/** An agent not heard from for this long is flagged: agents long-poll every 25 s and heartbeat every lease/4. */
const STALE_S = 90;

/** @typedef {import('./lib/api.js').JobView} JobView */
/** @typedef {{ agent_id: string, last_seen_at: string, last_heartbeat_at: string | null, current_request_id: string | null }} Agent */
/** @typedef {{ counts: Record<string, number>, queue_depth: number, oldest_pending_age_s: number | null, agents: Agent[], now: string }} Metrics */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Cursors of the pages before this one (the first page has none). */
/** @type {(string | undefined)[]} */
let cursors = [];
/** @type {string | undefined} */
let cursor;
/** @type {string | null} */
let nextCursor = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;
let running = false;
let signedIn = false;
/** Bumped on every navigation so an answer for an older page is dropped. */
let gen = 0;
/** Set when the server refused the last load; auto-refresh then waits for the user. */
let refused = false;

function schedule() {
  clearTimeout(timer);
  timer = undefined;
  if (!signedIn || document.hidden || !(/** @type {HTMLInputElement} */ ($('auto')).checked)) return;
  timer = setTimeout(() => void load(), REFRESH_MS);
}

async function load() {
  if (running) return;
  running = true;
  const mine = gen;
  const status = /** @type {HTMLSelectElement} */ ($('status-filter')).value;
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (status) q.set('status', status);
  if (cursor) q.set('cursor', cursor);
  try {
    const [metrics, list] = await Promise.all([api('GET', '/metrics'), api('GET', `/inference?${q}`)]);
    if (mine !== gen) return;
    renderMetrics(metrics);
    renderRequests(list.items, metrics.now);
    nextCursor = list.next_cursor;
    renderPager();
    $('board-error').hidden = true;
    $('board-content').hidden = false;
    $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (mine !== gen) return;
    showError(err);
    // Refused (signed out, or no operator role): asking again every 5 s would not change that.
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) refused = true;
  } finally {
    running = false;
    // An answer dropped for a newer navigation still has to let that navigation load.
    if (mine !== gen) void load();
    else if (refused) refused = false;
    else schedule();
  }
}

/** @param {unknown} err */
function showError(err) {
  const box = $('board-error');
  box.textContent = err instanceof ApiError ? err.message : `Something went wrong: ${String(err)}`;
  box.hidden = false;
}

/** @param {Metrics} m */
function renderMetrics(m) {
  const c = m.counts ?? {};
  /** @type {[string, string, string?][]} */
  const tiles = [
    ['Queued', String(m.queue_depth), m.queue_depth > 0 && m.agents.length === 0 ? 'warn' : ''],
    ['Oldest queued', m.oldest_pending_age_s === null ? '—' : formatAge(m.oldest_pending_age_s)],
    ['Running', String(c.processing ?? 0)],
    ['Completed', String(c.completed ?? 0)],
    ['Failed', String(c.failed ?? 0), (c.failed ?? 0) > 0 ? 'bad' : ''],
    ['Cancelled', String(c.cancelled ?? 0)],
    ['Agents', String(m.agents.length), m.agents.length === 0 ? 'warn' : ''],
  ];
  $('tiles').replaceChildren(...tiles.map(([k, v, tone]) => el('div', { class: `tile ${tone ?? ''}`, 'data-tile': k }, [el('dt', { text: k }), el('dd', { text: v })])));

  const now = Date.parse(m.now) || Date.now();
  const rows = m.agents.map((a) => {
    const lastContact = Math.max(Date.parse(a.last_seen_at), a.last_heartbeat_at ? Date.parse(a.last_heartbeat_at) : 0);
    const stale = (now - lastContact) / 1000 > STALE_S;
    return el('tr', { 'data-agent': a.agent_id }, [
      el('th', { scope: 'row', 'data-label': 'Agent', text: a.agent_id }),
      el('td', { 'data-label': 'State' }, [el('span', { class: `badge ${stale ? 'stale' : 'ok'}`, text: stale ? 'Stale' : 'OK', title: stale ? `Not heard from for more than ${STALE_S} s` : 'Calling in' })]),
      el('td', { 'data-label': 'Last seen', title: formatTime(a.last_seen_at), text: `${formatAge(ageSeconds(a.last_seen_at, now))} ago` }),
      el('td', a.last_heartbeat_at ? { 'data-label': 'Last heartbeat', title: formatTime(a.last_heartbeat_at), text: `${formatAge(ageSeconds(a.last_heartbeat_at, now))} ago` } : { 'data-label': 'Last heartbeat', text: 'never' }),
      el('td', { 'data-label': 'Working on', class: 'mono', text: a.current_request_id ?? 'idle' }),
    ]);
  });
  /** @type {HTMLElement} */ ($('agents').querySelector('tbody')).replaceChildren(...rows);
  $('agents').hidden = rows.length === 0;
  $('agents-empty').hidden = rows.length > 0;
}

/**
 * @param {JobView[]} items
 * @param {string} nowIso
 */
function renderRequests(items, nowIso) {
  const now = Date.parse(nowIso) || Date.now();
  // Rows are rebuilt on each refresh; the focused button is found again by its key afterwards.
  const focusKey = /** @type {HTMLElement | null} */ (document.activeElement)?.dataset?.focusKey;
  const rows = items.map((v) => {
    /** @type {HTMLElement[]} */
    const actions = [];
    if (v.status === 'pending' || v.status === 'processing') actions.push(actionButton(v, 'cancel', 'Cancel', 'danger'));
    if (v.status === 'failed' || v.status === 'cancelled') actions.push(actionButton(v, 'retry', 'Retry', 'secondary'));
    /** @type {(Node | string)[]} */
    let detail = [];
    const retryAt = v.status === 'pending' && v.run_at && Date.parse(v.run_at) > now ? v.run_at : null;
    if (v.status === 'processing') detail = [v.progress ? `${stageName(v.progress.stage)}: ${Math.round(v.progress.percent)} %` : 'starting'];
    else if (v.error) {
      detail = [el('span', { class: v.status === 'failed' ? 'error-text' : '', text: explainError(v.error) })];
      if (retryAt) detail.push(el('br'), el('small', { class: 'muted', text: `next attempt in ${formatAge((Date.parse(retryAt) - now) / 1000)}` }));
    } else if (v.status === 'pending') detail = ['waiting for an agent'];
    else if (v.status === 'completed' && v.started_at && v.completed_at) detail = [`done in ${formatAge((Date.parse(v.completed_at) - Date.parse(v.started_at)) / 1000)}`];
    return el('tr', { 'data-request': v.request_id }, [
      el('td', { 'data-label': 'Status' }, [el('span', { class: `badge ${v.status}`, text: statusWord(v.status) })]),
      el('td', { 'data-label': 'Study' }, [el('span', {}, [el('span', { class: 'mono', text: v.series_id }), el('br'), el('small', { class: 'muted mono', text: v.request_id })])]),
      el('td', { 'data-label': 'Age', title: `Created ${formatTime(v.created_at)}`, text: formatAge(ageSeconds(v.created_at, now)) }),
      el('td', { 'data-label': 'Attempts', class: 'num', text: `${v.attempts} / ${v.max_attempts}` }),
      el('td', { 'data-label': 'Agent', text: v.agent_id ?? '—' }),
      el('td', { 'data-label': 'Progress or error', class: 'detail' }, [el('span', {}, detail)]),
      el('td', { 'data-label': 'Actions', class: 'row-actions' }, [el('span', {}, actions)]),
    ]);
  });
  /** @type {HTMLElement} */ ($('requests').querySelector('tbody')).replaceChildren(...rows);
  $('requests-empty').hidden = rows.length > 0;
  if (focusKey) /** @type {HTMLElement | null} */ (document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`))?.focus();
}

/**
 * @param {JobView} v
 * @param {'cancel' | 'retry'} what
 * @param {string} label
 * @param {string} kind
 */
function actionButton(v, what, label, kind) {
  const b = /** @type {HTMLButtonElement} */ (el('button', { type: 'button', class: `${kind} small`, 'data-focus-key': `${v.request_id}:${what}`, 'aria-label': `${label} request for study ${v.series_id}`, text: label }));
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await api('POST', `/inference/${encodeURIComponent(v.request_id)}/${what}`);
      $('board-note').textContent = `${what === 'cancel' ? 'Cancelled' : 'Queued again'}: study ${v.series_id}.`;
    } catch (err) {
      showError(err);
    }
    await load();
  });
  return b;
}

function renderPager() {
  /** @type {HTMLButtonElement} */ ($('newer')).disabled = cursors.length === 0;
  /** @type {HTMLButtonElement} */ ($('older')).disabled = !nextCursor;
  $('page-label').textContent = `Page ${cursors.length + 1}`;
}

/** @param {() => void} change */
function navigate(change) {
  change();
  gen += 1;
  clearTimeout(timer);
  void load();
}

let wired = false;
function onSignedIn() {
  signedIn = true;
  $('loading').hidden = true;
  $('board').hidden = false;
  if (!wired) {
    wired = true;
    $('refresh-now').addEventListener('click', () => navigate(() => {}));
    $('auto').addEventListener('change', () => schedule());
    $('status-filter').addEventListener('change', () =>
      navigate(() => {
        cursors = [];
        cursor = undefined;
      }),
    );
    $('older').addEventListener('click', () =>
      navigate(() => {
        if (!nextCursor) return;
        cursors.push(cursor);
        cursor = nextCursor;
      }),
    );
    $('newer').addEventListener('click', () =>
      navigate(() => {
        cursor = cursors.pop();
      }),
    );
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) clearTimeout(timer);
      else void load();
    });
  }
  void load();
}

void initAuth({
  panel: $('auth'),
  who: $('who'),
  onReady: onSignedIn,
  onSignedOut: () => {
    signedIn = false;
    clearTimeout(timer);
    $('loading').hidden = true;
    $('board').hidden = true;
  },
});
