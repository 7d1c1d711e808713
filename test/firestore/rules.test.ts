import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { assertFails, initializeTestEnvironment, type RulesTestEnvironment } from '@firebase/rules-unit-testing';
import { collection, deleteDoc, doc, getDoc, getDocs, setDoc, setLogLevel } from 'firebase/firestore';
import { describeFirestore } from '../harness/firestore.js';

describeFirestore('firestore.rules deny every client-SDK read and write', () => {
  let env: RulesTestEnvironment;
  beforeAll(async () => {
    setLogLevel('silent'); // each refused write is otherwise logged as a warning
    const [host, port] = process.env.FIRESTORE_EMULATOR_HOST!.split(':');
    env = await initializeTestEnvironment({
      projectId: `demo-rules-${Date.now().toString(36)}`,
      firestore: { rules: readFileSync('firestore.rules', 'utf8'), host: host!, port: Number(port) },
    });
    // A real job document written with rules bypassed, so reads are refused by rule, not absence.
    await env.withSecurityRulesDisabled(async (ctx) => {
      await setDoc(doc(ctx.firestore(), 'jobs/j1'), { status: 'pending', series_id: 's1' });
    });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it.each(['jobs/j1', 'series/abc', 'agents/pc-1', 'anything/else'])('refuses %s to signed-in and anonymous users', async (path) => {
    for (const ctx of [env.authenticatedContext('clinician-1', { role: 'operator' }), env.unauthenticatedContext()]) {
      const db = ctx.firestore();
      await assertFails(getDoc(doc(db, path)));
      await assertFails(setDoc(doc(db, path), { status: 'completed' }));
      await assertFails(deleteDoc(doc(db, path)));
    }
  });

  it('refuses collection queries', async () => {
    await assertFails(getDocs(collection(env.authenticatedContext('u').firestore(), 'jobs')));
  });

  it('leaves the written job readable only with rules bypassed (the API path)', async () => {
    await env.withSecurityRulesDisabled(async (ctx) => {
      const snap = await getDoc(doc(ctx.firestore(), 'jobs/j1'));
      expect(snap.get('status')).toBe('pending');
    });
  });
});
