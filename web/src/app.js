// @ts-check
import { api, ApiError } from './lib/api.js';
import { initAuth } from './lib/auth.js';
import { ageSeconds, el, explainError, formatAge, formatBytes, formatMl, formatSeconds, formatTime, stageName, statusWord, subregionName } from './lib/format.js';

/**
 * The "AI analysis" page: choose a study, start the analysis, follow its progress by polling the
 * status endpoint, show the result. Polling stops when the analysis ends or the tab is hidden.
 */

const MODALITIES = /** @type {const} */ (['t1', 't1c', 't2', 'flair']);
const MODALITY_NAMES = { t1: 'T1', t1c: 'T1c', t2: 'T2', flair: 'FLAIR' };
const POLL_MS = 1500;
/** Polling slows down while the server cannot be reached, up to this. */
const POLL_MAX_MS = 15000;
const TYPED = '__typed__';

/** @typedef {import('./lib/api.js').JobView} JobView */
/** @typedef {{ series_id: string, label: string, series_ids: Record<'t1' | 't1c' | 't2' | 'flair', string> }} Study */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (document.getElementById(id));

/** @type {Study[]} */
let demos = [];
/** What the analysis panel shows now. Replaced whenever the user picks another study. */
let current = /** @type {{ study: Study, view: JobView | null, gen: number } | null} */ (null);
let generation = 0;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let pollTimer;
let pollDelay = POLL_MS;
/** Key of what the result panel shows, so polling does not rebuild it (and reload the image) each time. */
let shownResultKey = '';
let shownActionsKey = '';
/** true when the message under the buttons came from a failed poll (cleared by the next good one). */
let callErrorFromPoll = false;

const live = (/** @type {JobView | null} */ v) => v !== null && (v.status === 'pending' || v.status === 'processing');

// ---------------------------------------------------------------- studies

async function loadDemos() {
  try {
    const r = await fetch('/demo/studies.json', { cache: 'no-store' });
    if (!r.ok) return [];
    const list = await r.json();
    return Array.isArray(list) ? list.map(toStudy).filter((s) => s !== null) : [];
  } catch {
    return []; // no demo list on this deployment
  }
}

/** Accepts series_ids as {t1,t1c,t2,flair} or as the ordered list. @param {any} x @returns {Study | null} */
function toStudy(x) {
  if (!x || typeof x.series_id !== 'string') return null;
  const ids = Array.isArray(x.series_ids) ? Object.fromEntries(MODALITIES.map((m, i) => [m, x.series_ids[i]])) : x.series_ids;
  if (!ids || !MODALITIES.every((m) => typeof ids[m] === 'string' && ids[m])) return null;
  return { series_id: x.series_id, label: typeof x.label === 'string' && x.label ? x.label : x.series_id, series_ids: ids };
}

function renderDemos() {
  const box = $('demo-options');
  box.replaceChildren(
    ...demos.map((s, i) =>
      el('label', { class: 'option' }, [
        el('input', { type: 'radio', name: 'study', value: String(i) }),
        el('span', {}, [el('strong', { text: s.label }), el('small', { text: s.series_id })]),
      ]),
    ),
  );
  $('study-choice').hidden = demos.length === 0;
}

/** The study the form describes now, or a message saying what is missing. @returns {Study | string} */
function chosenStudy() {
  const picked = /** @type {HTMLInputElement | null} */ (document.querySelector('input[name=study]:checked'));
  if (demos.length > 0 && !picked) return 'Choose a study first.';
  if (picked && picked.value !== TYPED) return /** @type {Study} */ (demos[Number(picked.value)]);
  const series_id = input('f-series').value.trim();
  const ids = Object.fromEntries(MODALITIES.map((m) => [m, input(`f-${m}`).value.trim()]));
  const missing = [!series_id && 'the study id', ...MODALITIES.filter((m) => !ids[m]).map((m) => `the ${MODALITY_NAMES[m]} series`)].filter(Boolean);
  if (missing.length) return `Please fill in ${missing.join(', ')}.`;
  const bad = [series_id, ...Object.values(ids)].find((v) => /[/\\\u0000-\u001f]/.test(v));
  if (bad !== undefined) return `Ids must not contain slashes or control characters (“${bad}”).`;
  return { series_id, label: series_id, series_ids: /** @type {Study['series_ids']} */ (ids) };
}

function syncTypedVisibility() {
  const picked = /** @type {HTMLInputElement | null} */ (document.querySelector('input[name=study]:checked'));
  $('typed').hidden = demos.length > 0 && picked?.value !== TYPED;
}

// ---------------------------------------------------------------- polling

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = undefined;
}

/** @param {number} [delay] */
function schedulePoll(delay = pollDelay) {
  stopPolling();
  if (!current || !live(current.view) || document.hidden) return;
  pollTimer = setTimeout(() => void refresh(), delay);
}

/** Fetches the status of the current study and shows it. */
async function refresh() {
  if (!current) return;
  const { study, gen } = current;
  try {
    const view = await api('GET', `/inference/${encodeURIComponent(study.series_id)}/status`, { allow404: true });
    if (!current || current.gen !== gen) return; // the user picked another study meanwhile
    pollDelay = POLL_MS;
    if (callErrorFromPoll) clearCallError();
    showView(view);
  } catch (err) {
    if (!current || current.gen !== gen) return;
    showJobError(err);
    callErrorFromPoll = true;
    // An unreachable or overloaded server is asked again, less and less often; other refusals
    // (sign-in, permissions) wait for the user.
    const transient = err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status >= 500);
    if (transient && !document.hidden) {
      pollDelay = Math.min(POLL_MAX_MS, pollDelay * 2);
      stopPolling();
      pollTimer = setTimeout(() => void refresh(), pollDelay);
    }
    return;
  }
  schedulePoll();
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) stopPolling();
  else if (current && live(current.view)) void refresh();
});

// ---------------------------------------------------------------- actions

/** @param {Study} study */
function select(study) {
  stopPolling();
  generation += 1;
  current = { study, view: null, gen: generation };
  shownResultKey = '';
  shownActionsKey = '';
  $('job-result').replaceChildren();
  $('analysis-empty').hidden = true;
  $('job').hidden = false;
  $('job-series').textContent = study.label === study.series_id ? study.series_id : `${study.label} (${study.series_id})`;
  setStatusLine('Looking up earlier analyses…');
  $('job-progress').hidden = true;
  $('job-meta').textContent = '';
  $('job-error').hidden = true;
  $('job-actions').replaceChildren();
  clearCallError();
  void refresh();
}

/** @param {boolean} force */
async function start(force) {
  if (!current) return;
  const { study, gen } = current;
  clearCallError();
  revealAnalysis();
  setBusy(true);
  try {
    const r = await api('POST', `/inference/${encodeURIComponent(study.series_id)}/start`, { body: { series_ids: study.series_ids, ...(force ? { force: true } : {}) } });
    if (current?.gen !== gen) return;
    if (r?.existing && r.status === 'completed') setNote('This study was already analysed: the earlier result is shown. Press “Run again” to analyse it anew.');
  } catch (err) {
    if (current?.gen !== gen) return;
    if (err instanceof ApiError && err.status === 409 && !force) {
      // The server's wording ("send force: true") is for programmers; say what the button does.
      showJobError(null, 'This study already has an analysis made from different series.', [
        actionButton('Replace it with these series', 'primary', () => void start(true)),
      ], 'Replacing it cancels the other analysis if it is still running.');
    } else showJobError(err);
  } finally {
    setBusy(false);
  }
  await refresh();
}

/** @param {'cancel'} what */
async function act(what) {
  const view = current?.view;
  if (!view) return;
  clearCallError();
  setBusy(true);
  try {
    await api('POST', `/inference/${encodeURIComponent(view.request_id)}/${what}`);
  } catch (err) {
    showJobError(err);
  } finally {
    setBusy(false);
  }
  await refresh();
}

/** On a narrow screen the analysis panel is below the form: bring it into view when work starts. */
function revealAnalysis() {
  const panel = /** @type {HTMLElement} */ (document.querySelector('.analysis'));
  if (panel.getBoundingClientRect().top > window.innerHeight * 0.6) panel.scrollIntoView({ block: 'start' });
}

/** @param {boolean} busy */
function setBusy(busy) {
  for (const b of document.querySelectorAll('#job-actions button, #analyse')) /** @type {HTMLButtonElement} */ (b).disabled = busy;
}

// ---------------------------------------------------------------- rendering

/** @param {JobView | null} view */
function showView(view) {
  if (!current) return;
  current.view = view;
  $('job-error').hidden = true;
  const badge = $('job-badge');
  if (!view) {
    badge.className = 'badge none';
    badge.textContent = 'Not analysed';
    setStatusLine('This study has not been analysed yet. Press “AI analysis” to start.');
    $('job-progress').hidden = true;
    $('job-meta').textContent = '';
    renderActions(null);
    renderResult(null);
    return;
  }
  badge.className = `badge ${view.status}`;
  badge.textContent = statusWord(view.status);
  const bar = /** @type {HTMLProgressElement} */ ($('job-bar'));
  $('job-progress').hidden = !live(view);
  if (view.status === 'processing' && view.progress) {
    const pct = Math.round(view.progress.percent);
    bar.value = pct;
    setStatusLine(`${stageName(view.progress.stage)}: ${pct} %`);
  } else if (view.status === 'processing') {
    bar.removeAttribute('value');
    setStatusLine('A lab computer is starting the analysis…');
  } else if (view.status === 'pending') {
    bar.removeAttribute('value'); // indeterminate: nobody works on it yet
    const retryAt = view.run_at && Date.parse(view.run_at) > Date.now() ? view.run_at : null;
    setStatusLine(view.error && retryAt
      ? `Attempt ${view.attempts} did not finish; trying again at ${new Date(retryAt).toLocaleTimeString()}.`
      : `Queued ${formatAge(ageSeconds(view.created_at))} ago, waiting for a lab computer…`);
  } else if (view.status === 'completed') {
    setStatusLine(view.completed_at ? `Analysis completed ${formatTime(view.completed_at)}.` : 'Analysis completed.');
  } else if (view.status === 'failed') {
    setStatusLine('The analysis failed.');
  } else {
    setStatusLine('The analysis was cancelled.');
  }
  const meta = [`Attempt ${view.attempts} of ${view.max_attempts}`];
  if (view.agent_id) meta.push(`lab computer ${view.agent_id}`);
  meta.push(`request ${view.request_id}`);
  $('job-meta').textContent = meta.join(' · ');
  if (view.error && (view.status === 'failed' || view.status === 'cancelled' || view.status === 'pending')) {
    const err = $('job-error');
    err.replaceChildren(...(view.status === 'failed' ? [el('strong', { text: 'Reason: ' })] : []), explainError(view.error));
    err.className = view.status === 'failed' ? 'error' : 'info';
    err.hidden = view.status === 'cancelled' && view.error === 'cancelled by a user';
  }
  renderActions(view);
  renderResult(view);
}

/** Updates the live status line only when its words change, so screen readers hear each change once. */
function setStatusLine(/** @type {string} */ words) {
  const line = $('job-status');
  if (line.textContent !== words) line.textContent = words;
}

/** @param {string} words */
function setNote(words) {
  const box = $('call-error');
  box.className = 'info';
  box.textContent = words;
  box.hidden = false;
  callErrorFromPoll = false;
}

function clearCallError() {
  $('call-error').hidden = true;
  callErrorFromPoll = false;
}

/**
 * @param {unknown} err
 * @param {string} [lead] a sentence to say first
 * @param {HTMLElement[]} [buttons]
 * @param {string} [instead] words to show instead of the error's own
 */
function showJobError(err, lead, buttons = [], instead) {
  const box = $('call-error');
  callErrorFromPoll = false;
  box.className = 'error';
  const words = instead ?? (err instanceof ApiError ? err.message : `Something went wrong: ${String(err)}`);
  box.replaceChildren(...(lead ? [el('strong', { text: lead }), ' '] : []), words, ...buttons.map((b) => el('span', { class: 'inline-action' }, [b])));
  box.hidden = false;
}

/** @param {JobView | null} view */
function renderActions(view) {
  const key = view ? `${view.request_id}:${view.status}` : 'none';
  if (key === shownActionsKey) return;
  const box = $('job-actions');
  const hadFocus = box.contains(document.activeElement);
  shownActionsKey = key;
  /** @type {HTMLElement[]} */
  const buttons = [];
  if (view && live(view)) buttons.push(actionButton('Cancel analysis', 'danger', () => void act('cancel')));
  // A failed or cancelled run is replaced by a new one with a plain start; a completed one needs force.
  if (view && (view.status === 'failed' || view.status === 'cancelled')) buttons.push(actionButton('Run again', 'primary', () => void start(false)));
  if (view && view.status === 'completed') buttons.push(actionButton('Run again', 'secondary', () => void start(true)));
  box.replaceChildren(...buttons);
  // Keep keyboard users where they were when the buttons change under them.
  if (hadFocus) (/** @type {HTMLElement | null} */ (box.querySelector('button')) ?? $('analyse')).focus();
}

/**
 * @param {string} label
 * @param {string} kind
 * @param {() => void} onClick
 */
function actionButton(label, kind, onClick) {
  const b = /** @type {HTMLButtonElement} */ (el('button', { type: 'button', class: kind, text: label }));
  b.addEventListener('click', onClick);
  return b;
}

/** @param {JobView | null} view */
function renderResult(view) {
  const box = $('job-result');
  if (!view || view.status !== 'completed' || !view.result) {
    if (shownResultKey) box.replaceChildren();
    shownResultKey = '';
    return;
  }
  const key = view.request_id + (view.downloads?.preview?.url ?? '') + (view.downloads?.seg?.url ?? '');
  // The same result with fresh signed URLs only swaps the URLs (no flicker, no reload of the image).
  if (shownResultKey.startsWith(view.request_id) && shownResultKey !== key) {
    updateLinks(view);
    shownResultKey = key;
    return;
  }
  if (key === shownResultKey) return;
  shownResultKey = key;
  const r = view.result;
  const volumes = r.volumes_ml && typeof r.volumes_ml === 'object' ? /** @type {Record<string, number>} */ (r.volumes_ml) : {};
  const whole = typeof r.whole_tumor_ml === 'number' ? r.whole_tumor_ml : Object.values(volumes).reduce((a, b) => a + b, 0);
  const detected = r.tumor_detected === true;
  const timings = r.timings && typeof r.timings === 'object' ? /** @type {Record<string, number>} */ (r.timings) : {};
  const model = r.model && typeof r.model === 'object' ? r.model : null;

  const preview = view.downloads?.preview;
  const seg = view.downloads?.seg;
  const segBytes = r.outputs?.seg?.bytes;

  box.replaceChildren(
    el('h3', { text: 'Result' }),
    el('p', { class: 'notice', role: 'note' }, [
      el('strong', { text: 'Not for clinical use. ' }),
      'This result comes from a demonstration model for research and testing. It is not a medical device and must not guide diagnosis or treatment.',
    ]),
    el('p', { class: `verdict ${detected ? 'yes' : 'no'}` }, ['Tumour detected: ', el('strong', { id: 'tumour-detected', text: detected ? 'Yes' : 'No' })]),
    el('div', { class: 'result-grid' }, [
      el('figure', { class: 'preview' }, [
        preview
          ? previewImage(preview.url)
          : el('p', { class: 'muted', text: 'No preview image was uploaded for this analysis.' }),
        el('figcaption', { text: 'Largest tumour slice with the segmentation overlaid.' }),
      ]),
      el('div', { class: 'numbers' }, [
        el('table', { class: 'volumes' }, [
          el('caption', { text: 'Tumour volume by subregion' }),
          el('thead', {}, [el('tr', {}, [el('th', { scope: 'col', text: 'Subregion' }), el('th', { scope: 'col', class: 'num', text: 'Volume (mL)' })])]),
          el('tbody', {}, Object.entries(volumes).map(([name, ml]) => el('tr', {}, [el('th', { scope: 'row', text: subregionName(name) }), el('td', { class: 'num', text: formatMl(ml) })]))),
          el('tfoot', {}, [el('tr', {}, [el('th', { scope: 'row', text: 'Whole tumour' }), el('td', { class: 'num', id: 'whole-tumour', text: formatMl(whole) })])]),
        ]),
        seg
          ? el('p', {}, [segLink(seg.url, segBytes)])
          : el('p', { class: 'muted', text: 'No DICOM SEG was uploaded for this analysis.' }),
        Object.keys(timings).length
          ? el('table', { class: 'timings' }, [
              el('caption', { text: 'Time per stage' }),
              el('thead', {}, [el('tr', {}, [el('th', { scope: 'col', text: 'Stage' }), el('th', { scope: 'col', class: 'num', text: 'Seconds' })])]),
              el('tbody', {}, Object.entries(timings).map(([stage, s]) => el('tr', {}, [el('th', { scope: 'row', text: stageName(stage) }), el('td', { class: 'num', text: formatSeconds(s) })]))),
            ])
          : null,
        el('dl', { class: 'facts' }, [
          ...(model ? [el('dt', { text: 'Model' }), el('dd', { id: 'model', text: `${model.name ?? 'unknown'} ${model.version ?? ''}`.trim() })] : []),
          ...(typeof r.inference_time_seconds === 'number' ? [el('dt', { text: 'Inference time' }), el('dd', { text: formatSeconds(r.inference_time_seconds) })] : []),
          ...(typeof r.tumor_volume_voxels === 'number' ? [el('dt', { text: 'Tumour voxels' }), el('dd', { text: r.tumor_volume_voxels.toLocaleString() })] : []),
          ...(view.agent_id ? [el('dt', { text: 'Lab computer' }), el('dd', { text: view.agent_id })] : []),
          ...(view.completed_at ? [el('dt', { text: 'Completed' }), el('dd', { text: formatTime(view.completed_at) })] : []),
        ]),
      ]),
    ]),
  );
}

/** @param {string} url */
function previewImage(url) {
  const img = /** @type {HTMLImageElement} */ (el('img', { id: 'preview', src: url, alt: 'Preview: the MRI slice with the largest tumour area, with the segmented subregions in colour.' }));
  let retried = false;
  // A signed URL that expired (the page stayed open) is renewed once through the status endpoint.
  img.addEventListener('error', () => {
    if (retried) return;
    retried = true;
    void freshDownloads().then((d) => {
      if (d?.preview?.url) img.src = d.preview.url;
    });
  });
  return img;
}

/**
 * @param {string} url
 * @param {unknown} bytes
 */
function segLink(url, bytes) {
  const a = /** @type {HTMLAnchorElement} */ (el('a', { id: 'seg-link', class: 'button secondary', href: url, download: 'seg.dcm' }, [
    'Download the DICOM SEG',
    typeof bytes === 'number' ? ` (${formatBytes(bytes)})` : '',
  ]));
  a.addEventListener('click', (e) => {
    const exp = current?.view?.downloads?.seg?.expires_at;
    if (!exp || Date.parse(exp) - Date.now() > 10_000) return;
    // The link is about to expire: fetch a fresh one first.
    e.preventDefault();
    void freshDownloads().then((d) => {
      if (d?.seg?.url) window.location.assign(d.seg.url);
    });
  });
  return a;
}

/** @param {JobView} view */
function updateLinks(view) {
  const a = /** @type {HTMLAnchorElement | null} */ (document.getElementById('seg-link'));
  if (a && view.downloads?.seg) a.href = view.downloads.seg.url;
}

/** Re-reads the status for fresh signed URLs. */
async function freshDownloads() {
  if (!current) return undefined;
  try {
    const view = await api('GET', `/inference/${encodeURIComponent(current.study.series_id)}/status`, { allow404: true });
    if (view && current) {
      current.view = view;
      updateLinks(view);
    }
    return view?.downloads;
  } catch (err) {
    showJobError(err);
    return undefined;
  }
}

// ---------------------------------------------------------------- wiring

function prefillFromUrl() {
  // A viewer can link here with the study filled in: ?series_id=…&t1=…&t1c=…&t2=…&flair=…
  const q = new URLSearchParams(window.location.search);
  const sid = q.get('series_id');
  if (!sid) return null;
  const demo = demos.findIndex((d) => d.series_id === sid);
  if (demo >= 0) {
    const radio = /** @type {HTMLInputElement} */ (document.querySelector(`input[name=study][value="${demo}"]`));
    radio.checked = true;
    return demos[demo] ?? null;
  }
  input('f-series').value = sid;
  for (const m of MODALITIES) input(`f-${m}`).value = q.get(m) ?? '';
  input('choose-typed').checked = true;
  return null;
}

let wired = false;
async function onSignedIn() {
  $('loading').hidden = true;
  $('workspace').hidden = false;
  if (wired) {
    if (current) void refresh();
    return;
  }
  wired = true;
  demos = await loadDemos();
  renderDemos();
  const prefilled = prefillFromUrl();
  if (!prefilled && demos.length > 0 && !document.querySelector('input[name=study]:checked')) {
    /** @type {HTMLInputElement} */ (document.querySelector('input[name=study]')).checked = true;
  }
  syncTypedVisibility();
  const first = chosenStudy();
  if (typeof first !== 'string') select(first);

  $('study-choice').addEventListener('change', () => {
    syncTypedVisibility();
    $('form-error').hidden = true;
    const s = chosenStudy();
    if (typeof s !== 'string') select(s);
  });
  $('study-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const s = chosenStudy();
    const formError = $('form-error');
    if (typeof s === 'string') {
      formError.textContent = s;
      formError.hidden = false;
      return;
    }
    formError.hidden = true;
    if (current?.study.series_id !== s.series_id || JSON.stringify(current.study.series_ids) !== JSON.stringify(s.series_ids)) select(s);
    void start(false);
  });
}

void initAuth({
  panel: $('auth'),
  who: $('who'),
  onReady: () => void onSignedIn(),
  onSignedOut: () => {
    stopPolling();
    $('loading').hidden = true;
    $('workspace').hidden = true;
  },
});
