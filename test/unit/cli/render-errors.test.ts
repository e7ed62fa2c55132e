import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { printError } from '../../../src/cli/render/errors.js';
import { BangerError, BootFailedError } from '../../../src/model/errors.js';
import { errorFromWire, errorToWire } from '../../../src/rpc/wire.js';

/** What printError writes, as the user reads it (not a terminal: no colour). */
function printed(err: unknown): { text: string; code: number } {
  const chunks: Buffer[] = [];
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => chunks.push(d));
  const code = printError(err, stream as unknown as NodeJS.WriteStream);
  return { text: Buffer.concat(chunks).toString(), code };
}

/** As the CLI gets it: through the wire's encoding and back. */
const overTheWire = (err: BangerError) => errorFromWire(JSON.parse(JSON.stringify(errorToWire(err))));

const boot = { vmId: 'f00d', vmName: 'nope-boot', logPath: 'vms/f00d/run/console.log', keptDespiteRm: false };

describe('a failed boot as the CLI shows it', () => {
  it('says the VM was kept despite --rm, where its log is, and how to read it and delete it', () => {
    const err = new BootFailedError('VM nope-boot booted but its agent did not answer: gone', boot);
    const { text, code } = printed(overTheWire(err.keptDespiteRm()));
    expect(code).toBe(1);
    expect(text).toContain('banger: VM nope-boot booted but its agent did not answer: gone');
    expect(text).toContain(
      'VM nope-boot kept despite --rm, to read its console log (vms/f00d/run/console.log)',
    );
    expect(text).toContain('banger vm logs nope-boot');
    expect(text).toContain('banger vm delete nope-boot');
  });

  it('without --rm says nothing of keeping; the type and its details survive the wire', () => {
    const back = overTheWire(new BootFailedError('failed', boot));
    expect(back).toBeInstanceOf(BootFailedError);
    expect((back as BootFailedError).boot).toEqual(boot);
    expect(back.code).toBe('boot_failed');
    expect(printed(back).text).not.toContain('kept');
  });

  it('any other error stays what it was: no boot details are made up', () => {
    const back = overTheWire(new BangerError('operation_failed', 'tap failed', { hint: 'look' }));
    expect(back).not.toBeInstanceOf(BootFailedError);
    expect(back).toMatchObject({ code: 'operation_failed', message: 'tap failed', hint: 'look' });
    expect(printed(new BangerError('cancelled', 'interrupted')).code).toBe(130);
  });
});
