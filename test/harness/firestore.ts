import { describe } from '@jest/globals';
export { freshFirestore } from './firestore-emulator.js';

/** True when the global setup found or started an emulator. */
export const hasFirestore = Boolean(process.env.FIRESTORE_EMULATOR_HOST) && !process.env.FIRESTORE_EMULATOR_MISSING;

/** `describe` for Firestore suites: skipped loudly when no emulator can run on this machine. */
export function describeFirestore(name: string, fn: () => void): void {
  if (hasFirestore) return describe(name, fn);
  // Why skip rather than fail: the emulator ships with this machine image (Google's package), not with
  // any registry the project can install from, so a machine without it cannot run these suites at all.
  console.warn(`SKIPPED (no Firestore emulator): ${name}`);
  describe.skip(name, fn);
}
