// @ts-check
import { ApiError, loadWebConfig, setCredentials } from './api.js';

/**
 * Sign-in for both deployments. Locally (`auth: 'token'`) the page uses the client token that
 * `npm start` hands over, or one the user pastes (kept in sessionStorage: gone when the tab closes).
 * In the cloud (`auth: 'firebase'`) the user signs in with email and password and every call carries
 * the Firebase ID token (the SDK refreshes it before it expires).
 */

const TOKEN_KEY = 'lab-relay.client-token';

/**
 * @param {{ panel: HTMLElement, who: HTMLElement, onReady: () => void, onSignedOut?: () => void }} ui
 *   panel: where the sign-in form goes (hidden while signed in); who: the header's "signed in as" area;
 *   onReady: called each time credentials become usable.
 */
export async function initAuth(ui) {
  /** @type {import('./api.js').WebConfig} */
  let config;
  try {
    config = await loadWebConfig();
  } catch (err) {
    showPanel(ui.panel, errorBox(err instanceof ApiError ? err.message : String(err)));
    return;
  }
  if (config.auth === 'firebase' && config.firebase) await firebaseAuth(config.firebase, ui);
  else tokenAuth(config, ui);
}

/**
 * @param {import('./api.js').WebConfig} config
 * @param {{ panel: HTMLElement, who: HTMLElement, onReady: () => void, onSignedOut?: () => void }} ui
 */
function tokenAuth(config, ui) {
  /** @type {string | null} */
  let token = config.token ?? safeSession('get');
  const handedOver = Boolean(config.token);

  const signedIn = () => {
    ui.panel.hidden = true;
    ui.panel.replaceChildren();
    ui.who.replaceChildren(
      text('span', handedOver && token === config.token ? 'Local session (token from npm start)' : 'Signed in with a client token'),
      button('Change token', () => askForToken('')),
    );
    ui.onReady();
  };

  /** @param {string} message */
  const askForToken = (message) => {
    token = null;
    safeSession('remove');
    ui.who.replaceChildren();
    ui.onSignedOut?.();
    const form = document.createElement('form');
    form.className = 'card auth-form';
    form.setAttribute('aria-labelledby', 'auth-title');
    form.innerHTML = `
      <h2 id="auth-title">Sign in</h2>
      <p>Paste a client token. Locally, <code>npm start</code> writes it to <code>.data/tokens.env</code>
        (<code>INFERENCE_CLIENT_TOKENS</code>). It is kept only in this browser tab.</p>
      <label for="token-input">Client token</label>
      <input id="token-input" name="token" type="password" autocomplete="off" spellcheck="false" required minlength="16">
      <button type="submit" class="primary">Use this token</button>`;
    if (message) form.append(errorBox(message));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const input = /** @type {HTMLInputElement} */ (form.querySelector('#token-input'));
      token = input.value.trim();
      safeSession('set', token);
      signedIn();
    });
    showPanel(ui.panel, form);
    /** @type {HTMLInputElement | null} */ (form.querySelector('#token-input'))?.focus();
  };

  setCredentials({
    token: async () => token,
    // The generic "sign in again" wording fits Firebase; here the fix is a different token.
    rejected: () => askForToken('The server did not accept this token (wrong, or no longer valid). Paste the current client token.'),
  });
  if (token) signedIn();
  else askForToken('');
}

/**
 * @param {import('./api.js').FirebaseWebConfig} cfg
 * @param {{ panel: HTMLElement, who: HTMLElement, onReady: () => void, onSignedOut?: () => void }} ui
 */
async function firebaseAuth(cfg, ui) {
  /** @type {typeof import('./firebase.js')} */
  let fb;
  try {
    // Loaded only in the cloud configuration: the local page never downloads the SDK.
    fb = await import('./firebase.js');
  } catch {
    showPanel(ui.panel, errorBox('The sign-in module could not be loaded. Reload the page.'));
    return;
  }
  const session = fb.startFirebase(cfg);
  /** A message to show on the next sign-in form (why the user was signed out). */
  let why = '';

  const form = () => {
    const f = document.createElement('form');
    f.className = 'card auth-form';
    f.setAttribute('aria-labelledby', 'auth-title');
    f.innerHTML = `
      <h2 id="auth-title">Sign in</h2>
      <label for="email-input">Email</label>
      <input id="email-input" name="email" type="email" autocomplete="username" required>
      <label for="password-input">Password</label>
      <input id="password-input" name="password" type="password" autocomplete="current-password" required>
      <button type="submit" class="primary">Sign in</button>
      <p class="error" role="alert" id="auth-error"></p>`;
    const alert = /** @type {HTMLElement} */ (f.querySelector('#auth-error'));
    alert.textContent = why;
    alert.hidden = !why;
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const email = /** @type {HTMLInputElement} */ (f.querySelector('#email-input')).value.trim();
      const password = /** @type {HTMLInputElement} */ (f.querySelector('#password-input')).value;
      const submit = /** @type {HTMLButtonElement} */ (f.querySelector('button[type=submit]'));
      submit.disabled = true;
      alert.hidden = true;
      try {
        await session.signIn(email, password);
        why = '';
      } catch (err) {
        alert.textContent = fb.signInErrorText(err);
        alert.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
    return f;
  };

  setCredentials({
    token: () => session.idToken(),
    rejected: (message) => {
      why = message;
      void session.signOut();
    },
  });
  session.onChange((email) => {
    if (email !== null) {
      ui.panel.hidden = true;
      ui.panel.replaceChildren();
      ui.who.replaceChildren(text('span', `Signed in as ${email}`), button('Sign out', () => void session.signOut()));
      ui.onReady();
    } else {
      ui.who.replaceChildren();
      ui.onSignedOut?.();
      const f = form();
      showPanel(ui.panel, f);
      /** @type {HTMLInputElement | null} */ (f.querySelector('#email-input'))?.focus();
    }
  });
}

/**
 * @param {HTMLElement} panel
 * @param {HTMLElement} content
 */
function showPanel(panel, content) {
  panel.replaceChildren(content);
  panel.hidden = false;
}

/** @param {string} message */
function errorBox(message) {
  const p = text('p', message);
  p.className = 'error';
  p.setAttribute('role', 'alert');
  return p;
}

/**
 * @param {string} tag
 * @param {string} content
 */
function text(tag, content) {
  const el = document.createElement(tag);
  el.textContent = content;
  return el;
}

/**
 * @param {string} label
 * @param {() => void} onClick
 */
function button(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'link-button';
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

/**
 * sessionStorage can throw (privacy modes, storage disabled); the page then simply asks again.
 * @param {'get' | 'set' | 'remove'} op
 * @param {string} [value]
 * @returns {string | null}
 */
function safeSession(op, value) {
  try {
    if (op === 'get') return sessionStorage.getItem(TOKEN_KEY);
    if (op === 'set' && value !== undefined) sessionStorage.setItem(TOKEN_KEY, value);
    if (op === 'remove') sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* not available: keep the token in memory only */
  }
  return null;
}
