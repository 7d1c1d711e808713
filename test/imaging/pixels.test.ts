import { describe, it, expect } from '@jest/globals';
import { decodeFrame } from '../../lab-agent/src/imaging/dicom/pixels.js';

const fmt = (bitsAllocated: number, bitsStored: number, pixelRepresentation: number, littleEndian = true) => ({ bitsAllocated, bitsStored, pixelRepresentation, littleEndian });

describe('decodeFrame', () => {
  it('applies slope/intercept to signed 16-bit little endian at an odd byte offset', () => {
    const buf = new Uint8Array(1 + 6);
    const view = new DataView(buf.buffer);
    [-5, 0, 300].forEach((v, i) => view.setInt16(1 + 2 * i, v, true));
    const out = new Float32Array(5);
    decodeFrame(buf, 1, 3, fmt(16, 16, 1), 2, 1, out, 2);
    expect([...out]).toEqual([0, 0, -9, 1, 601]);
  });

  it('reads big endian unsigned 16-bit', () => {
    const buf = Uint8Array.from([0x01, 0x02, 0xff, 0xff]);
    const out = new Float32Array(2);
    decodeFrame(buf, 0, 2, fmt(16, 16, 0, false), 1, 0, out, 0);
    expect([...out]).toEqual([0x0102, 65535]);
  });

  it('masks bits above BitsStored and sign-extends signed 12-bit values', () => {
    const u = new Uint16Array([0xf123, 0x0fff]); // high nibble is overlay garbage
    const out = new Float32Array(2);
    decodeFrame(new Uint8Array(u.buffer), 0, 2, fmt(16, 12, 0), 1, 0, out, 0);
    expect([...out]).toEqual([0x123, 0xfff]);
    decodeFrame(new Uint8Array(u.buffer), 0, 2, fmt(16, 12, 1), 1, 0, out, 0);
    expect([...out]).toEqual([0x123, -1]);
  });

  it('reads 8-bit unsigned', () => {
    const out = new Float32Array(3);
    decodeFrame(Uint8Array.from([0, 128, 255]), 0, 3, fmt(8, 8, 0), 0.5, 0, out, 0);
    expect([...out]).toEqual([0, 64, 127.5]);
  });
});
