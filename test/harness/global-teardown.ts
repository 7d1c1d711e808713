// Jest loads global setup/teardown outside its module mapper, hence the .ts specifier here.
import type { ChildProcess } from 'node:child_process';
import { stopEmulator } from './firestore-emulator.ts';

export default async function globalTeardown(): Promise<void> {
  stopEmulator((globalThis as { __firestoreEmulator?: ChildProcess }).__firestoreEmulator);
}
