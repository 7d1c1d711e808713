import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../functions/src/config.js';
import { backoffMs, policyFrom } from '../../functions/src/jobs/policy.js';

describe('API configuration', () => {
  it('applies defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ PORT: 8080, JOB_STORE: 'sqlite', SQLITE_PATH: '.data/jobs.sqlite', LEASE_SECONDS: 120, PENDING_TTL_SECONDS: 86400, MAX_ATTEMPTS: 3 });
  });
  it('fails fast naming every bad setting', () => {
    expect(() => loadConfig({ JOB_STORE: 'mongo', LEASE_SECONDS: 'soon', INFERENCE_AGENT_TOKENS: 'short' })).toThrow(ConfigError);
    try {
      loadConfig({ JOB_STORE: 'mongo', LEASE_SECONDS: 'soon', INFERENCE_AGENT_TOKENS: 'short' });
    } catch (e) {
      const m = (e as Error).message;
      expect(m).toMatch(/JOB_STORE/);
      expect(m).toMatch(/LEASE_SECONDS/);
      expect(m).toMatch(/INFERENCE_AGENT_TOKENS: every token must be at least 16 characters/);
      expect(m).not.toContain('short');
    }
  });
  it('needs a project for Firestore', () => {
    expect(() => loadConfig({ JOB_STORE: 'firestore' })).toThrow(/GOOGLE_CLOUD_PROJECT/);
    expect(loadConfig({ JOB_STORE: 'firestore', GCLOUD_PROJECT: 'p1' }).GOOGLE_CLOUD_PROJECT).toBe('p1');
  });
  it('splits token lists and hands out a heartbeat interval of a quarter lease', () => {
    const c = loadConfig({ INFERENCE_AGENT_TOKENS: ' aaaaaaaaaaaaaaaa , bbbbbbbbbbbbbbbb,', LEASE_SECONDS: '60' });
    expect(c.INFERENCE_AGENT_TOKENS).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    expect(policyFrom(c).heartbeatIntervalS).toBe(15);
  });
  it('backs off exponentially with jitter, capped', () => {
    const p = policyFrom(loadConfig({ RETRY_BASE_SECONDS: '10', RETRY_MAX_SECONDS: '60' }));
    expect(backoffMs(p, 1, () => 0)).toBe(5000);
    expect(backoffMs(p, 1, () => 1)).toBe(10000);
    expect(backoffMs(p, 3, () => 1)).toBe(40000);
    expect(backoffMs(p, 10, () => 1)).toBe(60000);
  });
});
