/**
 * The package installs the npm way: `npm pack` (prepack builds dist/ and the agent) gives a tarball with
 * what runs and nothing else, and `npm install -g` of it into a temporary prefix gives a working `banger`
 * and `bangerd`, and the SDK import from a project outside the repository. The native addons
 * (better-sqlite3, zstd-napi) build from source against the host's Node headers (npm_config_nodedir=/usr,
 * no download), allowed by name. Slow (one pack, one install that compiles SQLite): that is its job.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../fixtures/banger-instance.js';

const version = (await import(join(REPO_ROOT, 'package.json'), { with: { type: 'json' } })).default
  .version as string;
const work = mkdtempSync(join(tmpdir(), 'banger-pack-'));
const prefix = join(work, 'prefix');
const installed = join(prefix, 'lib', 'node_modules', 'banger');
let files: string[] = [];

beforeAll(async () => {
  // Packed from a copy of the working tree, so prepack's build (dist/, the bundle, the agent) happens there
  // and never under the other tests, which run the checkout's own dist/ meanwhile.
  const copy = join(work, 'checkout');
  mkdirSync(copy);
  await execa('sh', [
    '-c',
    'tar -C "$1" --exclude=./node_modules --exclude=./dist --exclude=./agent/build --exclude=./.git -cf - . | tar -C "$2" -xf -',
    'sh',
    REPO_ROOT,
    copy,
  ]);
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'));
  const pack = await execa('npm', ['pack', '--json', '--pack-destination', work], { cwd: copy });
  files = (JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  const tarball = join(work, `banger-${version}.tgz`);
  await execa(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--allow-scripts=better-sqlite3,zstd-napi',
      tarball,
    ],
    { env: { npm_config_nodedir: '/usr' } },
  );
}, 1_800_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

const home = () => {
  const h = join(work, 'home');
  mkdirSync(h, { recursive: true });
  return { BANGER_HOME: h, NO_COLOR: '1' };
};

describe('npm pack + npm install -g', () => {
  it('packs what runs, and no tests, benches or TypeScript sources', () => {
    for (const f of [
      'dist/cli/main.js',
      'dist/cli/banger.js',
      'dist/daemon/main.js',
      'dist/sdk/index.js',
      'dist/sdk/index.d.ts',
      'agent/build/banger-agent',
      'bin/banger',
      'bin/bangerd',
      'bin/bangerd-root',
      'dist/priv-helper/main.js',
      'src/catalog/images/catalog.json',
      'src/catalog/kernels/catalog.json',
      'src/kernel/assets/init.sh',
      'src/guest/assets/first-boot.sh',
      'docs/sdk.md',
      'README.md',
      'LICENSE',
    ])
      expect(files, f).toContain(f);
    expect(
      files.filter((f) => /^(test|bench|scripts)\//.test(f) || /\.ts$/.test(f.replace(/\.d\.ts$/, ''))),
    ).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  });

  it('gives a working banger and bangerd, with the native addons built', async () => {
    const bin = join(prefix, 'bin');
    const v = await execa(join(bin, 'banger'), ['--version'], { env: home() });
    expect(v.stdout.trim()).toBe(version);
    const doctor = await execa(join(bin, 'banger'), ['doctor', '--json'], { env: home(), reject: false });
    const checks = JSON.parse(doctor.stdout) as { name: string; status: string }[];
    expect(checks.map((c) => c.name)).toContain('architecture');
    expect(existsSync(join(bin, 'bangerd'))).toBe(true);
    const helper = await execa(join(bin, 'bangerd-root'), ['--version'], { env: home() });
    expect(helper.stdout.trim()).toBe(version);
    const addons = await execa(
      process.execPath,
      [
        '-e',
        "new (require('better-sqlite3'))(':memory:').exec('select 1'); require('zstd-napi'); console.log('ok')",
      ],
      { cwd: installed },
    );
    expect(addons.stdout).toBe('ok');
  });

  it('imports the SDK from a project outside the repository, and nothing else', async () => {
    const project = join(work, 'project');
    mkdirSync(join(project, 'node_modules'), { recursive: true });
    symlinkSync(installed, join(project, 'node_modules', 'banger'));
    writeFileSync(join(project, 'package.json'), '{"type":"module"}\n');
    writeFileSync(
      join(project, 'check.js'),
      [
        "const m = await import('banger');",
        "console.log(typeof m.Banger, typeof m.BangerError, typeof new m.Banger({ socketPath: '/nonexistent' }).vms.run);",
        "await import('banger/dist/daemon/daemon.js').then(() => console.log('internals importable'), (e) => console.log(e.code));",
      ].join('\n'),
    );
    const r = await execa(process.execPath, ['check.js'], { cwd: project });
    expect(r.stdout.split('\n')).toEqual(['function function function', 'ERR_PACKAGE_PATH_NOT_EXPORTED']);
    expect(readdirSync(installed)).not.toContain('test');
  });
});
