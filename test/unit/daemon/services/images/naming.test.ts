import { describe, expect, it } from 'vitest';
import { defaultImageName, detectCompression } from '../../../../../src/daemon/services/images/index.js';

describe('defaultImageName', () => {
  it('takes the last path component and the tag, as the original', () => {
    expect(defaultImageName('docker.io/library/debian:bookworm')).toBe('debian-bookworm');
    expect(defaultImageName('127.0.0.1:5000/busybox:1.35')).toBe('busybox-1.35');
    expect(defaultImageName('ghcr.io/org/team/tool')).toBe('tool');
    expect(defaultImageName('localhost:5000/app')).toBe('app');
  });

  it('uses 12 hex digits of a digest when there is no tag', () => {
    expect(defaultImageName(`alpine@sha256:${'ab'.repeat(32)}`)).toBe('alpine-abababababab');
    expect(defaultImageName(`alpine:3.20@sha256:${'cd'.repeat(32)}`)).toBe('alpine-3.20');
  });

  it('never yields a name that escapes the images directory', () => {
    expect(() => defaultImageName('..')).toThrow(/invalid image name/);
    expect(defaultImageName('reg/a:b..c')).toBe('a-b.c');
  });
});

describe('detectCompression', () => {
  it('knows tarball compressions by their magic bytes', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0]))).toBe('xz');
    expect(detectCompression(Buffer.from('BZh91AY'))).toBe('bzip2');
    expect(detectCompression(Buffer.from('etc/passwd\0'))).toBe('none');
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
  });
});
