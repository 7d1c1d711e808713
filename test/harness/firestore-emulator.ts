import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where Google's package `google-cloud-cli-firestore-emulator` puts the real emulator. */
export const EMULATOR_BIN =
  process.env.FIRESTORE_EMULATOR_BIN ?? '/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function answers(host: string): Promise<boolean> {
  try {
    const r = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(1000) });
    return r.ok || r.status > 0;
  } catch {
    return false;
  }
}

/** Starts the real Firestore emulator on a free loopback port and waits until it answers. */
export async function startFirestoreEmulator(timeoutMs = 60_000): Promise<{ host: string; child: ChildProcess }> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const child = spawn(EMULATOR_BIN, ['start', '--host=127.0.0.1', `--port=${port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Firestore emulator exited with ${child.exitCode}: ${stderr}`);
    if (await answers(host)) return { host, child };
    await new Promise((r) => setTimeout(r, 250));
  }
  stopEmulator(child);
  throw new Error(`Firestore emulator did not answer on ${host} within ${timeoutMs} ms: ${stderr}`);
}

export function stopEmulator(child: ChildProcess | undefined): void {
  if (!child?.pid || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM'); // the launcher script and its java child
  } catch {
    /* already gone */
  }
}

export function emulatorAvailable(): boolean {
  return Boolean(process.env.FIRESTORE_EMULATOR_HOST) || existsSync(EMULATOR_BIN);
}

/** A fresh `demo-*` project per call: isolates suites without clearing the emulator. */
export function freshFirestore(): { db: Firestore; projectId: string } {
  const projectId = `demo-${randomBytes(5).toString('hex')}`;
  return { db: new Firestore({ projectId }), projectId };
}
