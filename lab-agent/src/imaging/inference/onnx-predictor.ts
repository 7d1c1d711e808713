/**
 * Adapts an onnxruntime session to the sliding window's WindowPredictor: builds the [1, C, a, b, c] tensor
 * in the model's axis order from a window in Volume layout (x fastest), runs it, and converts back.
 */
import ort from 'onnxruntime-node';
import type { Vec3 } from '../volume.js';
import type { WindowPredictor } from './sliding-window.js';

export type AxisOrder = 'xyz' | 'zyx';

export interface PredictorOptions {
  inputName: string;
  outputName: string;
  axisOrder: AxisOrder;
}

export function onnxWindowPredictor(session: Pick<ort.InferenceSession, 'run'>, o: PredictorOptions): WindowPredictor {
  // The window buffers (input tensor and the converted output) are reused across windows: one of each.
  let tIn: Float32Array | undefined;
  let back: Float32Array | undefined;
  return async (win, C, roi) => {
    const [rx, ry, rz] = roi;
    const rn = rx * ry * rz;
    // 'zyx' = [N, C, Z, Y, X] row-major, x fastest: exactly the Volume layout, no copy needed.
    let tensorData = win;
    if (o.axisOrder === 'xyz') {
      if (!tIn || tIn.length !== C * rn) tIn = new Float32Array(C * rn);
      for (let c = 0; c < C; c++) toXyz(win.subarray(c * rn, (c + 1) * rn), tIn.subarray(c * rn, (c + 1) * rn), roi);
      tensorData = tIn;
    }
    const spatial = o.axisOrder === 'xyz' ? [rx, ry, rz] : [rz, ry, rx];
    const feeds = { [o.inputName]: new ort.Tensor('float32', tensorData, [1, C, ...spatial]) };
    const results = await session.run(feeds, [o.outputName]);
    const t = results[o.outputName];
    if (!t) throw new Error(`model produced no output '${o.outputName}'`);
    const d = t.dims;
    if (t.type !== 'float32') throw new Error(`model output '${o.outputName}' is ${t.type}, expected float32`);
    if (d.length !== 5 || d[0] !== 1 || d[2] !== spatial[0] || d[3] !== spatial[1] || d[4] !== spatial[2]) {
      throw new Error(`model output '${o.outputName}' has shape [${d.join(', ')}] for an input of [1, ${C}, ${spatial.join(', ')}]; expected [1, K, ${spatial.join(', ')}]`);
    }
    const K = d[1]!;
    const data = t.data as Float32Array;
    if (o.axisOrder === 'zyx') return { data, channels: K };
    if (!back || back.length !== K * rn) back = new Float32Array(K * rn);
    for (let k = 0; k < K; k++) fromXyz(data.subarray(k * rn, (k + 1) * rn), back.subarray(k * rn, (k + 1) * rn), roi);
    return { data: back, channels: K };
  };
}

/** x-fastest [z][y][x] -> z-fastest [x][y][z]. */
function toXyz(src: Float32Array, dst: Float32Array, [rx, ry, rz]: Vec3): void {
  let s = 0;
  for (let z = 0; z < rz; z++)
    for (let y = 0; y < ry; y++)
      for (let x = 0; x < rx; x++) dst[(x * ry + y) * rz + z] = src[s++]!;
}

function fromXyz(src: Float32Array, dst: Float32Array, [rx, ry, rz]: Vec3): void {
  let d = 0;
  for (let z = 0; z < rz; z++)
    for (let y = 0; y < ry; y++)
      for (let x = 0; x < rx; x++) dst[d++] = src[(x * ry + y) * rz + z]!;
}
