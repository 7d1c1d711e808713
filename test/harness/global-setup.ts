// Jest loads global setup/teardown outside its module mapper, hence the .ts specifier here.
import { EMULATOR_BIN, emulatorAvailable, startFirestoreEmulator } from './firestore-emulator.ts';

/**
 * Starts the real Firestore emulator once for the whole run when FIRESTORE_EMULATOR_HOST is unset.
 * Jest workers are spawned after this and inherit the variable. A machine without the emulator
 * skips the Firestore suites loudly (test/harness/firestore.ts), never silently.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.FIRESTORE_EMULATOR_HOST) return;
  if (!emulatorAvailable()) {
    process.env.FIRESTORE_EMULATOR_MISSING = '1';
    console.warn(`\n*** SKIPPED: Firestore suites — emulator not found at ${EMULATOR_BIN} (install google-cloud-cli-firestore-emulator) ***\n`);
    return;
  }
  const { host, child } = await startFirestoreEmulator();
  process.env.FIRESTORE_EMULATOR_HOST = host;
  (globalThis as { __firestoreEmulator?: unknown }).__firestoreEmulator = child;
}
