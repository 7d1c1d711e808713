import { describe } from '@jest/globals';
import { SqliteJobStore } from '../../functions/src/stores/sqlite-store.js';
import { jobStoreContract } from './contract.js';

describe('SQLite job store', () => {
  jobStoreContract(() => new SqliteJobStore(':memory:'));
});
