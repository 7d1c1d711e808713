import { FirestoreJobStore } from '../../functions/src/stores/firestore-store.js';
import { describeFirestore, freshFirestore } from '../harness/firestore.js';
import { jobStoreContract } from './contract.js';

describeFirestore('Firestore job store (emulator)', () => {
  jobStoreContract(() => new FirestoreJobStore(freshFirestore().db));
});
