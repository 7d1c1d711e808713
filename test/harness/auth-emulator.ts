import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './firestore-emulator.js';

/**
 * The real Firebase Auth emulator (firebase-tools, plain Node: no Java), on free loopback ports
 * from a throwaway config folder, so parallel runs and its debug logs stay out of the repository.
 */
export const FIREBASE_BIN = resolve('node_modules/.bin/firebase');

export interface AuthEmulator {
  host: string;
  projectId: string;
  child: ChildProcess;
  stop(): void;
  /** Creates a user with custom claims and returns a fresh ID token for it. */
  signIn(email: string, claims: Record<string, unknown>): Promise<{ uid: string; idToken: string }>;
}

export async function startAuthEmulator(projectId: string, timeoutMs = 90_000): Promise<AuthEmulator> {
  const dir = mkdtempSync(join(tmpdir(), 'auth-emu-'));
  const [port, hub, logging] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'firebase.json'),
    JSON.stringify({ emulators: { auth: { host: '127.0.0.1', port }, hub: { host: '127.0.0.1', port: hub }, logging: { host: '127.0.0.1', port: logging }, ui: { enabled: false }, singleProjectMode: true } }),
  );
  const child = spawn(FIREBASE_BIN, ['emulators:start', '--only', 'auth', '--project', projectId, '--config', join(dir, 'firebase.json')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, FIREBASE_CLI_DISABLE_UPDATE_CHECK: 'true', CI: 'true' },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  const host = `127.0.0.1:${port}`;
  const stop = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      stop();
      throw new Error(`Auth emulator exited: ${out}`);
    }
    try {
      if ((await fetch(`http://${host}/`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      stop();
      throw new Error(`Auth emulator did not start within ${timeoutMs} ms: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  const base = `http://${host}/identitytoolkit.googleapis.com/v1`;
  return {
    host,
    projectId,
    child,
    stop,
    async signIn(email, claims) {
      const password = 'correct horse battery staple';
      const created = await fetch(`${base}/projects/${projectId}/accounts`, {
        method: 'POST',
        headers: { authorization: 'Bearer owner', 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      const { localId } = (await created.json()) as { localId: string };
      // Custom claims (the role) are set as an admin would, with setCustomUserClaims' REST call.
      await fetch(`${base}/projects/${projectId}/accounts:update`, {
        method: 'POST',
        headers: { authorization: 'Bearer owner', 'content-type': 'application/json' },
        body: JSON.stringify({ localId, customAttributes: JSON.stringify(claims) }),
      });
      const r = await fetch(`${base}/accounts:signInWithPassword?key=fake-api-key`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password, returnSecureToken: true }),
      });
      const { idToken } = (await r.json()) as { idToken: string };
      return { uid: localId, idToken };
    },
  };
}

export const authEmulatorAvailable = (): boolean => existsSync(FIREBASE_BIN);
