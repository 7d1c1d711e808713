/**
 * A small DICOM Part-10 writer: enough for the phantom series and the SEG. Elements are given with their
 * VR by the caller (no data dictionary needed); sequences are written with explicit lengths.
 */
import { randomUUID } from 'node:crypto';

export const TS = {
  implicitLittle: '1.2.840.10008.1.2',
  explicitLittle: '1.2.840.10008.1.2.1',
  explicitBig: '1.2.840.10008.1.2.2',
} as const;

export type VR =
  | 'AE' | 'AS' | 'AT' | 'CS' | 'DA' | 'DS' | 'DT' | 'FL' | 'FD' | 'IS' | 'LO' | 'LT' | 'OB' | 'OW' | 'PN'
  | 'SH' | 'SL' | 'SQ' | 'SS' | 'ST' | 'TM' | 'UI' | 'UL' | 'UN' | 'US' | 'UT';

export type Value = string | number | readonly (string | number)[] | Uint8Array | DataSet[] | undefined;

export interface Element {
  /** (group << 16) | element, e.g. 0x00100010 for PatientName. */
  tag: number;
  vr: VR;
  /** Absent/undefined/'' writes an empty (zero-length) element, as type 2 attributes need. */
  value?: Value;
}

export type DataSet = Element[];

/** Shorthand for building data sets. */
export function el(tag: number, vr: VR, value?: Value): Element {
  return { tag, vr, value };
}

// VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length.
const LONG_VR = new Set<VR>(['OB', 'OW', 'SQ', 'UN', 'UT']);
const NUMERIC: Partial<Record<VR, { size: number; put: (v: DataView, o: number, x: number, le: boolean) => void }>> = {
  US: { size: 2, put: (v, o, x, le) => v.setUint16(o, x, le) },
  SS: { size: 2, put: (v, o, x, le) => v.setInt16(o, x, le) },
  UL: { size: 4, put: (v, o, x, le) => v.setUint32(o, x, le) },
  SL: { size: 4, put: (v, o, x, le) => v.setInt32(o, x, le) },
  FL: { size: 4, put: (v, o, x, le) => v.setFloat32(o, x, le) },
  FD: { size: 8, put: (v, o, x, le) => v.setFloat64(o, x, le) },
};

/** A new UID under the UUID-derived root 2.25 (PS3.5 B.2): unique without a registered org root. */
export function newUid(): string {
  return '2.25.' + BigInt('0x' + randomUUID().replace(/-/g, '')).toString();
}

/** Decimal String: at most 16 characters, as required by PS3.5. */
export function formatDS(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`cannot encode ${x} as DS`);
  if (Object.is(x, -0) || Math.abs(x) < 1e-12) return '0';
  let s = String(x);
  for (let p = 15; s.length > 16 && p > 0; p--) s = Number(x.toPrecision(p)).toString();
  return s;
}

interface Encoding {
  explicit: boolean;
  little: boolean;
}

function valueBytes(e: Element, enc: Encoding): Buffer {
  const { vr, value } = e;
  if (value === undefined || value === '') return Buffer.alloc(0);
  if (vr === 'SQ') throw new Error('sequence values are encoded by encodeElement');
  if (value instanceof Uint8Array) {
    const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    // OW data is handed over as little-endian 16-bit words; swap for big endian.
    if (vr === 'OW' && !enc.little) {
      const s = Buffer.from(b);
      s.swap16();
      return padEven(s, 0);
    }
    return padEven(b, 0);
  }
  const list = (Array.isArray(value) ? value : [value]) as (string | number)[];
  const num = NUMERIC[vr];
  if (num) {
    const out = Buffer.alloc(list.length * num.size);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    list.forEach((x, i) => num.put(view, i * num.size, Number(x), enc.little));
    return out;
  }
  if (vr === 'AT') {
    const out = Buffer.alloc(list.length * 4);
    list.forEach((t, i) => {
      out[enc.little ? 'writeUInt16LE' : 'writeUInt16BE'](Number(t) >>> 16, i * 4);
      out[enc.little ? 'writeUInt16LE' : 'writeUInt16BE'](Number(t) & 0xffff, i * 4 + 2);
    });
    return out;
  }
  const text = list.map((x) => (typeof x === 'number' ? (vr === 'DS' ? formatDS(x) : vr === 'IS' ? String(Math.round(x)) : String(x)) : x)).join('\\');
  return padEven(Buffer.from(text, 'latin1'), vr === 'UI' ? 0 : 0x20);
}

function padEven(b: Buffer, pad: number): Buffer {
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([pad])]);
}

function header(tag: number, vr: VR, length: number, enc: Encoding): Buffer {
  const w16 = enc.little ? 'writeUInt16LE' : 'writeUInt16BE';
  const w32 = enc.little ? 'writeUInt32LE' : 'writeUInt32BE';
  if (!enc.explicit) {
    const h = Buffer.alloc(8);
    h[w16](tag >>> 16, 0);
    h[w16](tag & 0xffff, 2);
    h[w32](length, 4);
    return h;
  }
  const long = LONG_VR.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h[w16](tag >>> 16, 0);
  h[w16](tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h[w32](length, 8);
  else {
    if (length > 0xffff) throw new Error(`value of (${hexTag(tag)}) ${vr} too long for explicit VR (${length} bytes)`);
    h[w16](length, 6);
  }
  return h;
}

export function hexTag(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)},${h.slice(4)}`;
}

function encodeElement(e: Element, enc: Encoding, out: Buffer[]): void {
  if (e.vr === 'SQ') {
    const items: Buffer[] = [];
    for (const item of (e.value as DataSet[] | undefined) ?? []) {
      const body = encodeDataSet(item, enc);
      const ih = Buffer.alloc(8);
      // Item tag (FFFE,E000) has no VR even in explicit VR.
      ih[enc.little ? 'writeUInt16LE' : 'writeUInt16BE'](0xfffe, 0);
      ih[enc.little ? 'writeUInt16LE' : 'writeUInt16BE'](0xe000, 2);
      ih[enc.little ? 'writeUInt32LE' : 'writeUInt32BE'](body.length, 4);
      items.push(ih, body);
    }
    const len = items.reduce((s, b) => s + b.length, 0);
    out.push(header(e.tag, 'SQ', len, enc), ...items);
    return;
  }
  const v = valueBytes(e, enc);
  out.push(header(e.tag, e.vr, v.length, enc), v);
}

/** Encodes a data set (elements sorted by tag, as PS3.5 requires). */
export function encodeDataSet(ds: DataSet, enc: Encoding): Buffer {
  const sorted = [...ds].sort((a, b) => (a.tag >>> 0) - (b.tag >>> 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.tag === sorted[i - 1]!.tag) throw new Error(`duplicate element (${hexTag(sorted[i]!.tag)}) in data set`);
  }
  const out: Buffer[] = [];
  for (const e of sorted) encodeElement(e, enc, out);
  return Buffer.concat(out);
}

export interface Part10Options {
  /** Implicit VR LE, explicit VR LE (default) or explicit VR BE. */
  transferSyntaxUID?: string;
  /**
   * For negative tests only: declare this transfer syntax in the file meta while encoding the data set
   * as explicit VR little endian (e.g. to produce a file that claims to be JPEG-compressed).
   */
  declaredTransferSyntaxUID?: string;
}

const IMPLEMENTATION_CLASS_UID = '2.25.302453893874512094622213426158719862161';
const IMPLEMENTATION_VERSION = 'LABRELAY_01';

/**
 * A complete Part-10 file: preamble, "DICM", file meta information (always explicit VR little endian),
 * then the data set in the requested transfer syntax. SOP class/instance are taken from the data set.
 */
export function writePart10(ds: DataSet, opts: Part10Options = {}): Buffer {
  const tsUid = opts.transferSyntaxUID ?? TS.explicitLittle;
  if (tsUid !== TS.implicitLittle && tsUid !== TS.explicitLittle && tsUid !== TS.explicitBig) {
    throw new Error(`cannot encode transfer syntax ${tsUid} (only uncompressed syntaxes are written)`);
  }
  const find = (tag: number): string => {
    const e = ds.find((x) => x.tag === tag);
    if (!e || typeof e.value !== 'string' || !e.value) throw new Error(`data set lacks (${hexTag(tag)}) needed for the file meta header`);
    return e.value;
  };
  const metaEnc: Encoding = { explicit: true, little: true };
  const metaBody = encodeDataSet(
    [
      el(0x00020001, 'OB', Uint8Array.from([0, 1])),
      el(0x00020002, 'UI', find(0x00080016)),
      el(0x00020003, 'UI', find(0x00080018)),
      el(0x00020010, 'UI', opts.declaredTransferSyntaxUID ?? tsUid),
      el(0x00020012, 'UI', IMPLEMENTATION_CLASS_UID),
      el(0x00020013, 'SH', IMPLEMENTATION_VERSION),
    ],
    metaEnc,
  );
  const groupLength = encodeDataSet([el(0x00020000, 'UL', metaBody.length)], metaEnc);
  const enc: Encoding = { explicit: tsUid !== TS.implicitLittle, little: tsUid !== TS.explicitBig };
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, metaBody, encodeDataSet(ds, enc)]);
}
