// @ts-check
import { initializeApp } from 'firebase/app';
import {
  browserSessionPersistence,
  connectAuthEmulator,
  initializeAuth,
  onAuthStateChanged,
  signInWithEmailAndPassword,
  signOut,
} from 'firebase/auth';

/**
 * Firebase Authentication for the cloud deployment (a separate chunk, loaded only in that mode).
 * Session persistence: a shared reading-room workstation forgets the user when the tab closes.
 * @param {import('./api.js').FirebaseWebConfig} cfg
 */
export function startFirebase(cfg) {
  const app = initializeApp({ apiKey: cfg.apiKey, authDomain: cfg.authDomain, projectId: cfg.projectId });
  const auth = initializeAuth(app, { persistence: browserSessionPersistence });
  if (cfg.authEmulatorUrl) connectAuthEmulator(auth, cfg.authEmulatorUrl, { disableWarnings: true });
  return {
    /** @param {string} email @param {string} password */
    signIn: (email, password) => signInWithEmailAndPassword(auth, email, password),
    signOut: () => signOut(auth),
    /** The current ID token; the SDK renews it shortly before it expires. */
    idToken: async () => (auth.currentUser ? auth.currentUser.getIdToken() : null),
    /** @param {(email: string | null) => void} cb called with the user's email, or null when signed out */
    onChange: (cb) => onAuthStateChanged(auth, (user) => cb(user ? (user.email ?? user.uid) : null)),
  };
}

/**
 * Firebase error codes in plain words.
 * @param {unknown} err
 */
export function signInErrorText(err) {
  const code = err && typeof err === 'object' && 'code' in err ? String(err.code) : '';
  switch (code) {
    case 'auth/invalid-credential':
    case 'auth/invalid-login-credentials':
    case 'auth/wrong-password':
    case 'auth/user-not-found':
      return 'The email or password is not correct.';
    case 'auth/invalid-email':
      return 'That is not a valid email address.';
    case 'auth/user-disabled':
      return 'This account has been disabled. Ask an administrator.';
    case 'auth/too-many-requests':
      return 'Too many attempts. Wait a few minutes, then try again.';
    case 'auth/network-request-failed':
      return 'Cannot reach the sign-in service. Check the network connection and try again.';
    default:
      return `Sign-in failed${code ? ` (${code})` : ''}. Please try again.`;
  }
}
