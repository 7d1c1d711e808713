import { randomBytes } from 'node:crypto';
import { describe } from '@jest/globals';
import { Firestore } from '@google-cloud/firestore';

/** True when the global setup found or started an emulator. */
export const hasFirestore = Boolean(process.env.FIRESTORE_EMULATOR_HOST) && !process.env.FIRESTORE_EMULATOR_MISSING;

/** `describe` for Firestore suites: skipped loudly when no emulator can run on this machine. */
export function describeFirestore(name: string, fn: () => void): void {
  if (hasFirestore) return describe(name, fn);
  console.warn(`SKIPPED (no Firestore emulator): ${name}`);
  describe.skip(name, fn);
}

/** A fresh `demo-*` project per call: isolates suites without clearing the emulator. */
export function freshFirestore(): { db: Firestore; projectId: string } {
  const projectId = `demo-${randomBytes(5).toString('hex')}`;
  return { db: new Firestore({ projectId }), projectId };
}
