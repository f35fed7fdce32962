// An S3-compatible server for tests, the demo and benchmarks: s3rver 3.7.1, IN-PROCESS, on 127.0.0.1.
//
// Clients must use path-style addressing (forcePathStyle: true); credentials are fixed (S3RVER/S3RVER)
// and s3rver never checks the signature. Two s3rver defects are fixed here:
// 1. aws-chunked request bodies (x-amz-content-sha256: STREAMING-*, as @aws-sdk/client-s3 sends for
//    stream bodies with its default checksums) are stored with their chunk framing as data: a Koa
//    middleware decodes them before s3rver reads the request.
// 2. ListObjectsV2 continuation tokens are DES-encrypted, which OpenSSL 3 lacks (HTTP 500 on every
//    paginated listing): 'des' is mapped to AES-128-CBC with the 8-byte key and IV doubled. The token
//    is opaque and both ends are in this process, so any reversible cipher will do.
//
// Defects that REMAIN (see /work/shared/lab/README.md); code and tests must not rely on these:
// - suffix ranges `bytes=-N` return bytes 0..N (use explicit `bytes=a-b`);
// - AbortMultipartUpload (405) and ListMultipartUploads (501) are not implemented;
// - conditional writes (If-None-Match: *, If-Match) are ignored: a PUT always overwrites;
// - no versioning, no Object Lock (retention headers accepted and ignored);
// - SigV4 signatures and the secret key are never verified (a wrong key is not refused).
// Test those against an external endpoint (MAILARK_TEST_S3_* environment, see test/harness).
import crypto from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';

const require = createRequire(import.meta.url);
const ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';
const env = process.env;

/**
 * Starts s3rver on 127.0.0.1 with one bucket.
 * @param {{ dir?: string, port?: number, bucket?: string, silent?: boolean }} [opts]
 * @returns {Promise<{ endpoint: string, accessKeyId: string, secretAccessKey: string, region: string,
 *   bucket: string, port: number, dir: string, stop(): Promise<void> }>}
 */
export async function startS3(opts = {}) {
  patchDesCipher();
  const S3rver = require('s3rver');
  const dir = resolve(opts.dir ?? mkdtempSync(join(tmpdir(), 'mailark-s3-')));
  mkdirSync(dir, { recursive: true });
  const bucket = opts.bucket ?? 'mailark-test';
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port ?? 0,
    directory: dir,
    silent: opts.silent ?? !env.MAILARK_S3_VERBOSE,
    resetOnClose: false,
    // Path-style only: a virtual-host bucket would need DNS for <bucket>.127.0.0.1.
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  server.middleware.unshift(decodeAwsChunked);
  let addr;
  try {
    addr = await server.run();
  } catch (err) {
    throw new Error(`s3rver did not start on 127.0.0.1:${opts.port ?? 0}: ${err.message}`, { cause: err });
  }
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    accessKeyId: ACCESS_KEY,
    secretAccessKey: ACCESS_KEY,
    region: REGION,
    bucket,
    port: addr.port,
    dir,
    async stop() {
      // Idle keep-alive sockets would hold close() open: drop them.
      server.httpServer?.closeAllConnections?.();
      await server.close().catch(() => {});
      // A directory this call created is removed (keep it with MAILARK_TEST_KEEP=1); a given one stays.
      if (opts.dir === undefined && env.MAILARK_TEST_KEEP !== '1')
        rmSync(dir, { recursive: true, force: true });
    },
  };
}

let desPatched = false;
function patchDesCipher() {
  if (desPatched) return;
  desPatched = true;
  try {
    crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return; // this OpenSSL still has DES
  } catch {}
  const doubled = (b) => Buffer.concat([Buffer.from(b), Buffer.from(b)]);
  for (const name of ['createCipheriv', 'createDecipheriv']) {
    const original = crypto[name];
    crypto[name] = (alg, key, iv, options) =>
      alg === 'des'
        ? original('aes-128-cbc', doubled(key), doubled(iv), options)
        : original(alg, key, iv, options);
  }
}

/** Koa middleware: replaces an aws-chunked request body by its decoded payload. */
async function decodeAwsChunked(ctx, next) {
  const h = ctx.req.headers;
  const streaming = /^STREAMING-/.test(h['x-amz-content-sha256'] ?? '');
  const encodings = (h['content-encoding'] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (streaming || encodings.includes('aws-chunked')) {
    const src = ctx.req;
    if (h['x-amz-decoded-content-length'] !== undefined)
      h['content-length'] = h['x-amz-decoded-content-length'];
    const rest = encodings.filter((e) => e !== 'aws-chunked');
    if (rest.length > 0) h['content-encoding'] = rest.join(',');
    else delete h['content-encoding'];
    const decoded = src.pipe(new AwsChunkedDecoder());
    src.on('error', (e) => decoded.destroy(e));
    // s3rver reads these off the request object.
    Object.assign(decoded, { headers: h, method: src.method, url: src.url, socket: src.socket });
    ctx.req = decoded;
  }
  await next();
}

/**
 * Decodes `<hex size>[;chunk-signature=…]\r\n<data>\r\n … 0[;…]\r\n[trailers]\r\n` (AWS SigV4 streaming).
 * Chunk signatures and trailing checksums are not verified (s3rver verifies no signature at all).
 */
class AwsChunkedDecoder extends Transform {
  constructor() {
    super();
    this.buf = Buffer.alloc(0);
    this.need = -1;
    this.ended = false;
  }

  _transform(chunk, _enc, cb) {
    if (this.ended) return cb();
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk;
    try {
      for (;;) {
        if (this.need < 0) {
          const eol = this.buf.indexOf('\r\n');
          if (eol < 0) break;
          const size = Number.parseInt(this.buf.subarray(0, eol).toString('latin1').split(';')[0], 16);
          if (!Number.isFinite(size)) throw new Error('malformed aws-chunked frame');
          this.buf = this.buf.subarray(eol + 2);
          if (size === 0) {
            this.ended = true; // what follows is the trailer (x-amz-checksum-*): ignored
            this.buf = Buffer.alloc(0);
            break;
          }
          this.need = size;
        }
        if (this.buf.length < this.need + 2) break;
        this.push(this.buf.subarray(0, this.need));
        this.buf = this.buf.subarray(this.need + 2);
        this.need = -1;
      }
      cb();
    } catch (err) {
      cb(err);
    }
  }
}
