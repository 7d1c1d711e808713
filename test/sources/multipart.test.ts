// The streaming multipart/related parser on its own: the same parts whatever the chunking, RFC 2046 details
// (preamble, quoted boundary, transport padding, epilogue) and clear errors for malformed bodies.
import { describe, expect, it } from '@jest/globals';
import { boundaryOf, MultipartError, MultipartParser } from '../../lab-agent/src/sources/multipart.js';

async function parse(body: Buffer, boundary: string, chunk: number | number[] = body.length, maxTotalBytes = 1 << 30) {
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  let cur: Buffer[] = [];
  const p = new MultipartParser(
    boundary,
    {
      start: async (headers) => {
        parts.push({ headers, body: Buffer.alloc(0) });
        cur = [];
      },
      data: async (c) => void cur.push(Buffer.from(c)),
      end: async () => void (parts.at(-1)!.body = Buffer.concat(cur)),
    },
    { maxTotalBytes },
  );
  const sizes = Array.isArray(chunk) ? chunk : [chunk];
  for (let i = 0, k = 0; i < body.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]!);
    await p.push(body.subarray(i, i + n));
    i += n;
  }
  await p.end();
  return parts;
}

describe('multipart parser', () => {
  // Part bodies that contain near-misses of the delimiter and CRLFs.
  const b = 'abc123';
  const bodies = [Buffer.from('hello'), Buffer.from(`x\r\n--abc12\r\n--abc12y--abc123`), Buffer.alloc(0), Buffer.from([0, 13, 10, 45, 45, 0xff])];
  const wire = Buffer.concat([
    Buffer.from('preamble to be ignored\r\n'),
    ...bodies.flatMap((p, i) => [Buffer.from(`--${b}  \r\nContent-Type: application/dicom\r\nX-Index: ${i}\r\n\r\n`), p, Buffer.from('\r\n')]),
    Buffer.from(`--${b}--\r\nepilogue`),
  ]);

  it('gives the same parts for every chunking, down to one byte at a time', async () => {
    for (const chunk of [wire.length, 1, 2, 3, 7, [1, 5, 2, 64], 13, 64]) {
      const parts = await parse(wire, b, chunk);
      expect(parts.map((p) => p.body.toString('latin1'))).toEqual(bodies.map((x) => x.toString('latin1')));
      expect(parts.map((p) => p.headers['x-index'])).toEqual(['0', '1', '2', '3']);
      expect(parts[0]!.headers['content-type']).toBe('application/dicom');
    }
  });

  it('takes the boundary from the Content-Type, quoted or not', () => {
    expect(boundaryOf('multipart/related; type="application/dicom"; boundary="a:b c"')).toBe('a:b c');
    expect(boundaryOf('Multipart/Related;boundary=xyz;type=application/dicom')).toBe('xyz');
    expect(() => boundaryOf('application/dicom')).toThrow(MultipartError);
    expect(() => boundaryOf(null)).toThrow(/expected a multipart response/);
    expect(() => boundaryOf('multipart/related; type="application/dicom"')).toThrow(/without a valid boundary/);
    expect(() => boundaryOf(`multipart/related; boundary=${'x'.repeat(71)}`)).toThrow(/without a valid boundary/);
  });

  it('a part without headers, and a body that starts with the first delimiter', async () => {
    const parts = await parse(Buffer.from('--q\r\n\r\nraw\r\n--q--'), 'q', 1);
    expect(parts).toEqual([{ headers: {}, body: Buffer.from('raw') }]);
  });

  it('refuses malformed bodies with clear errors', async () => {
    await expect(parse(Buffer.from('no delimiter here'), 'q')).rejects.toThrow(/no multipart delimiter/);
    await expect(parse(Buffer.from('--q\r\nA: b\r\n\r\nbody without end'), 'q', 4)).rejects.toThrow(/truncated/);
    await expect(parse(Buffer.from('--q\r\nno colon line\r\n\r\nx\r\n--q--'), 'q')).rejects.toThrow(/malformed header line/);
    await expect(parse(Buffer.from('--qjunk\r\n\r\nx\r\n--q--'), 'q')).rejects.toThrow(/malformed multipart delimiter/);
    await expect(parse(Buffer.from('text--q\r\n\r\nx\r\n--q--'), 'q')).rejects.toThrow(/not at the start of a line/);
    await expect(parse(Buffer.alloc(200_000, 0x61), 'q', 4096)).rejects.toThrow(/no multipart delimiter/);
    await expect(parse(Buffer.from(`--q\r\n\r\n${'x'.repeat(5000)}\r\n--q--`), 'q', 100, 1000)).rejects.toThrow(/larger than the limit of 1000 bytes/);
  });
});
