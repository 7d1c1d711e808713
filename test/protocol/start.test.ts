import { describe, expect, it } from '@jest/globals';
import { StartRequest } from '@lab-relay/protocol';

describe('StartRequest', () => {
  it('normalises a modality map to the seed order [t1, t1c, t2, flair]', () => {
    const r = StartRequest.parse({ series_ids: { flair: 'd', t2: 'c', t1: 'a', t1c: 'b' } });
    expect(r.series_ids).toEqual(['a', 'b', 'c', 'd']);
  });
  it('refuses three series and names the field', () => {
    const r = StartRequest.safeParse({ series_ids: ['a', 'b', 'c'] });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('series_ids');
  });
  it('refuses ids with slashes', () => {
    expect(StartRequest.safeParse({ series_ids: ['a/b', 'b', 'c', 'd'] }).success).toBe(false);
  });
});
