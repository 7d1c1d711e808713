/** Decodes one frame of uncompressed greyscale pixel data into floats with the rescale applied. */

export interface PixelFormat {
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  littleEndian: boolean;
}

const HOST_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Writes `count` pixels starting at `bytes[byteOffset]` into `out[outOffset..]` as value*slope+intercept.
 * Uses typed-array views when the data is aligned and in host byte order (the common case), a DataView
 * otherwise.
 */
export function decodeFrame(
  bytes: Uint8Array,
  byteOffset: number,
  count: number,
  fmt: PixelFormat,
  slope: number,
  intercept: number,
  out: Float32Array,
  outOffset: number,
): void {
  const bpp = fmt.bitsAllocated / 8;
  const signed = fmt.pixelRepresentation === 1;
  const abs = bytes.byteOffset + byteOffset;
  let src: ArrayLike<number>;
  if (bpp === 1) {
    src = signed ? new Int8Array(bytes.buffer, abs, count) : new Uint8Array(bytes.buffer, abs, count);
  } else if (abs % bpp === 0 && fmt.littleEndian === HOST_LITTLE) {
    src = bpp === 2
      ? signed ? new Int16Array(bytes.buffer, abs, count) : new Uint16Array(bytes.buffer, abs, count)
      : signed ? new Int32Array(bytes.buffer, abs, count) : new Uint32Array(bytes.buffer, abs, count);
  } else {
    const view = new DataView(bytes.buffer, abs, count * bpp);
    const le = fmt.littleEndian;
    const tmp = bpp === 2 ? (signed ? new Int16Array(count) : new Uint16Array(count)) : signed ? new Int32Array(count) : new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      tmp[i] = bpp === 2 ? (signed ? view.getInt16(i * 2, le) : view.getUint16(i * 2, le)) : signed ? view.getInt32(i * 4, le) : view.getUint32(i * 4, le);
    }
    src = tmp;
  }
  const unused = fmt.bitsAllocated - fmt.bitsStored;
  if (unused > 0 && unused < 32) {
    // Bits above BitsStored may hold overlays or garbage: mask them off (sign-extend signed values).
    const shift = 32 - fmt.bitsStored;
    const mask = fmt.bitsStored >= 32 ? 0xffffffff : (1 << fmt.bitsStored) - 1;
    for (let i = 0; i < count; i++) {
      const v = src[i]!;
      out[outOffset + i] = (signed ? ((v << shift) >> shift) : (v & mask) >>> 0) * slope + intercept;
    }
    return;
  }
  const dst = out.subarray(outOffset, outOffset + count);
  if (src instanceof Int16Array || src instanceof Uint16Array || src instanceof Uint8Array || src instanceof Int8Array) {
    // The typed-array conversion in set() is native code; then one monomorphic pass over floats.
    dst.set(src);
    if (slope !== 1 || intercept !== 0) rescaleInPlace(dst, slope, intercept);
  } else {
    for (let i = 0; i < count; i++) dst[i] = src[i]! * slope + intercept;
  }
}

function rescaleInPlace(dst: Float32Array, slope: number, intercept: number): void {
  for (let i = 0; i < dst.length; i++) dst[i] = dst[i]! * slope + intercept;
}
