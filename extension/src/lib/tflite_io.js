/**
 * The element type, shape and quantisation of a .tflite model's first input and output, read from the model's
 * FlatBuffer (schema.fbs: Model.subgraphs[0].{inputs, outputs, tensors}). LiteRT.js does not expose quantisation.
 */

const TENSOR_TYPES = { 0: "float32", 2: "int32", 3: "uint8", 9: "int8" };

/** {input, output}, each {type, shape, scale, zeroPoint} (scale 1 and zeroPoint 0 when not quantised). */
export function modelIo(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const model = table(view, view.getUint32(0, true));
  const subgraph = table(view, vectorOffsets(view, model, 2)[0]);
  const tensors = vectorOffsets(view, subgraph, 0);
  const tensorAt = (field) => describeTensor(view, table(view, tensors[vectorInts(view, subgraph, field, 4)[0]]));
  return { input: tensorAt(1), output: tensorAt(2) };
}

function describeTensor(view, tensor) {
  const typeCode = fieldPosition(view, tensor, 1) === null ? 0 : view.getInt8(fieldPosition(view, tensor, 1));
  const type = TENSOR_TYPES[typeCode] ?? `tensor type ${typeCode}`;
  const shape = vectorInts(view, tensor, 0, 4);
  const quantisation = reference(view, tensor, 4);
  let scale = 1;
  let zeroPoint = 0;
  if (quantisation !== null) {
    const q = table(view, quantisation);
    const scales = vectorFloats(view, q, 2);
    const zeroPoints = vectorInts(view, q, 3, 8);
    if (scales.length > 0) scale = scales[0];
    if (zeroPoints.length > 0) zeroPoint = zeroPoints[0];
  }
  return { type, shape, scale, zeroPoint };
}

// A table: its position and its vtable's position.
function table(view, position) {
  return { position, vtable: position - view.getInt32(position, true) };
}

function fieldPosition(view, { position, vtable }, field) {
  const vtableSize = view.getUint16(vtable, true);
  const entry = 4 + field * 2;
  if (entry >= vtableSize) return null;
  const offset = view.getUint16(vtable + entry, true);
  return offset === 0 ? null : position + offset;
}

function reference(view, tableRef, field) {
  const position = fieldPosition(view, tableRef, field);
  return position === null ? null : position + view.getUint32(position, true);
}

function vector(view, tableRef, field) {
  const position = reference(view, tableRef, field);
  return position === null ? { start: 0, length: 0 } : { start: position + 4, length: view.getUint32(position, true) };
}

function vectorOffsets(view, tableRef, field) {
  const { start, length } = vector(view, tableRef, field);
  return Array.from({ length }, (_, i) => start + i * 4 + view.getUint32(start + i * 4, true));
}

function vectorInts(view, tableRef, field, width) {
  const { start, length } = vector(view, tableRef, field);
  return Array.from({ length }, (_, i) =>
    width === 8 ? Number(view.getBigInt64(start + i * 8, true)) : view.getInt32(start + i * 4, true),
  );
}

function vectorFloats(view, tableRef, field) {
  const { start, length } = vector(view, tableRef, field);
  return Array.from({ length }, (_, i) => view.getFloat32(start + i * 4, true));
}
