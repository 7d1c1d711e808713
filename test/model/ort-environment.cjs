// Jest runs each test file in its own vm realm, but onnxruntime-node's native binding creates output
// tensors' typed arrays in the main realm, and onnxruntime-common then rejects them with
// "A float32 tensor's data must be type of Float32Array" (an instanceof check across realms).
// Test files that run ONNX models use this environment: it gives the test realm the main realm's
// typed-array constructors so both sides agree.
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Float32Array', 'Float64Array', 'Int8Array', 'Int16Array',
  'Int32Array', 'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array',
];

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtEnvironment;
