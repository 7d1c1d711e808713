import { afterAll, expect, it } from '@jest/globals';
import { Firestore } from '@google-cloud/firestore';
import { FirestoreJobStore } from '../../functions/src/stores/firestore-store.js';
import { describeFirestore } from '../harness/firestore.js';
import { SERIES4, serviceFor } from '../harness/service.js';

describeFirestore('long-poll wake-up across API instances (Firestore emulator)', () => {
  const projectId = `demo-wake-${Date.now().toString(36)}`;
  // Two instances as in Cloud Functions: separate clients, one database.
  const stores = [new FirestoreJobStore(new Firestore({ projectId })), new FirestoreJobStore(new Firestore({ projectId }))];
  const [a, b] = stores.map((s) => serviceFor(s)) as [ReturnType<typeof serviceFor>, ReturnType<typeof serviceFor>];
  afterAll(async () => {
    await a.close();
    await b.close();
    // Terminate the clients: a gRPC stream outliving this file would fire into the next test file.
    for (const s of stores) await s.close();
  });

  it('a job queued through instance A wakes a claimer waiting on instance B at once', async () => {
    // Let B's listener attach before the job is queued.
    const waiting = b.claim('pc', 20_000);
    await new Promise((r) => setTimeout(r, 1500));
    const queuedAt = Date.now();
    const started = await a.start('wake-1', { series_ids: SERIES4 });
    const job = await waiting;
    const latency = Date.now() - queuedAt;
    expect(job?.id).toBe(started.body.request_id);
    // B's own re-check runs every 5 s; only the snapshot listener explains a faster answer.
    expect(latency).toBeLessThan(2500);
  });
});
