// Files for the browser tests, made here (no fixtures on disk): a real PNG, a CSV, JSON.
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A width × height RGB PNG: a diagonal gradient with a few bars (a "chart"). */
export function png(width = 320, height = 200) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const bar = Math.floor(x / (width / 8));
      const barTop = height - ((bar * 37) % height) * 0.8 - 20;
      const inBar = x % Math.floor(width / 8) > 6 && y > barTop;
      const i = row + 1 + x * 3;
      raw[i] = inBar ? 31 : 235 - Math.floor((y / height) * 40);
      raw[i + 1] = inBar ? 95 + bar * 12 : 240 - Math.floor((x / width) * 30);
      raw[i + 2] = inBar ? 191 : 250;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A CSV with a header and `rows` rows (one quoted field with a comma). */
export function csv(rows = 120) {
  const lines = ['station,date,temperature_c,note'];
  for (let i = 1; i <= rows; i++) {
    lines.push(`ST-${String(i).padStart(3, '0')},2026-01-${String((i % 28) + 1).padStart(2, '0')},${(i * 0.7 - 10).toFixed(1)},${i === 2 ? '"windy, cold"' : 'ok'}`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

/** A small JSON document. */
export function json() {
  return Buffer.from(JSON.stringify({ model: 'forecast-v2', metrics: { rmse: 1.42, mae: 0.97 }, tags: ['weekly', 'ontario'] }));
}

/** `n` bytes that do not compress. */
export function bytes(n) {
  const b = Buffer.alloc(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeInt32LE(x | 0, Math.min(i, n - 4));
  }
  return b;
}
