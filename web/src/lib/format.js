// @ts-check
/** Wording shared by the analysis page and the dashboard. */

/** Stage names the lab agent reports, in words; unknown stages are shown as sent. */
const STAGES = /** @type {Record<string, string>} */ ({
  claimed: 'Picked up by a lab computer',
  running: 'Starting',
  fetch: 'Fetching the series',
  download: 'Fetching the series',
  load: 'Loading the series',
  resample: 'Aligning the series',
  normalise: 'Normalising intensities',
  normalize: 'Normalising intensities',
  infer: 'Running the model',
  postprocess: 'Cleaning up the segmentation',
  write_seg: 'Writing the DICOM SEG',
  preview: 'Drawing the preview',
  upload: 'Uploading the results',
  total: 'Total',
});

/** @param {string} stage */
export function stageName(stage) {
  return STAGES[stage] ?? stage.replace(/_/g, ' ');
}

const SUBREGIONS = /** @type {Record<string, string>} */ ({
  necrotic_core: 'Necrotic core',
  edema: 'Oedema',
  enhancing: 'Enhancing tumour',
});

/** @param {string} name */
export function subregionName(name) {
  return SUBREGIONS[name] ?? name.replace(/_/g, ' ');
}

export const STATUS_WORDS = /** @type {const} */ ({
  pending: 'Queued',
  processing: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
});

/** @param {string} status */
export function statusWord(status) {
  return /** @type {Record<string, string>} */ (STATUS_WORDS)[status] ?? status;
}

/** @param {number} ml */
export function formatMl(ml) {
  return ml >= 100 ? ml.toFixed(0) : ml >= 10 ? ml.toFixed(1) : ml.toFixed(2);
}

/** @param {number} s seconds */
export function formatSeconds(s) {
  return s < 10 ? `${s.toFixed(2)} s` : s < 120 ? `${s.toFixed(1)} s` : formatAge(s);
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h": an age or duration, rounded for people. @param {number} s */
export function formatAge(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  if (s < 90) return `${Math.round(s)} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.floor(s / 3600);
  if (h < 48) return `${h} h ${Math.round((s - h * 3600) / 60)} min`;
  const d = Math.floor(s / 86400);
  return `${d} d ${Math.round((s - d * 86400) / 3600)} h`;
}

/** Seconds since an ISO timestamp. @param {string} iso @param {number} [now] */
export function ageSeconds(iso, now = Date.now()) {
  return Math.max(0, (now - Date.parse(iso)) / 1000);
}

/** A local date and time. @param {string} iso */
export function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(0)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * A job's error in plain words; known machine phrasings get a sentence saying what to do.
 * @param {string} error
 */
export function explainError(error) {
  if (error.startsWith('expired: no agent claimed')) {
    return `No lab computer picked up the analysis in time (${error.replace(/^expired: /, '')}). Check that a lab agent is running, then run it again.`;
  }
  if (error.startsWith('lease expired')) {
    return `The lab computer stopped responding during the analysis (${error}). It may have been switched off or lost its network.`;
  }
  if (error === 'cancelled by a user') return 'The analysis was cancelled.';
  if (error.startsWith('superseded by request')) return 'A newer analysis of this study replaced this one.';
  return error;
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string | null | undefined | false)[]} [children]
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
