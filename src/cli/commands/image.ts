import { resolve } from 'node:path';
import { Command, Option, type OptionValues } from '@commander-js/extra-typings';
import { badRequest } from '../../model/errors.js';
import { formatSize, parseSize } from '../../model/sizes.js';
import { callWithProgress } from '../call.js';
import { type CliContext, examples } from '../context.js';
import { describeSource, renderImage } from '../render/image.js';
import { ago, renderJson, renderTable } from '../render/table.js';
import { withStdinFifo } from '../stdin-fifo.js';

interface KernelFlags {
  kernelRef?: string;
  kernel?: string;
  initrd?: string;
  modules?: string;
}

/** `--kernel-ref` | `--kernel [--initrd] [--modules]`, shared by pull, import and register. */
const kernelRefOption = () =>
  new Option('--kernel-ref <kernel>', 'a kernel name (see: banger kernel list)').conflicts(['kernel']);
const kernelOption = () => new Option('--kernel <file>', 'a kernel image on this host');
const initrdOption = () => new Option('--initrd <file>', 'an initramfs for --kernel');
const modulesOption = () => new Option('--modules <dir>', 'a modules directory for --kernel');

function withKernelOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .addOption(kernelRefOption())
    .addOption(kernelOption())
    .addOption(initrdOption())
    .addOption(modulesOption());
}

/** `--size`, shared by pull and import (the ext4 they build). */
const sizeOption = () =>
  new Option('--size <size>', 'ext4 size, e.g. 4GiB (default: content x 1.5, at least 1 GiB)');

function kernelParams(o: KernelFlags) {
  if (o.kernelRef && (o.kernel || o.initrd || o.modules)) {
    throw badRequest('--kernel-ref cannot be combined with --kernel/--initrd/--modules');
  }
  if (!o.kernel && (o.initrd || o.modules)) throw badRequest('--initrd and --modules need --kernel');
  return {
    kernelRef: o.kernelRef,
    kernel: o.kernel ? resolve(o.kernel) : undefined,
    initrd: o.initrd ? resolve(o.initrd) : undefined,
    modules: o.modules ? resolve(o.modules) : undefined,
  };
}

const sizeParam = (size: string | undefined) => (size === undefined ? undefined : parseSize(size));

/** `banger image list|show|catalog|pull|import|register|promote|rm|cache prune|bundle`. */
export function imageCommands(ctx: CliContext) {
  const image = new Command('image').description('pull, import and manage VM images');

  image
    .command('list')
    .alias('ls')
    .description('list images')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('banger image list', 'banger image list --json'))
    .action(async (opts) => {
      const { images } = await (await ctx.client()).call('image.list', {});
      if (opts.json) {
        ctx.out.write(renderJson(images));
        return;
      }
      const rows = images.map((i) => [
        i.name,
        i.source.kind,
        i.managed ? 'yes' : 'no',
        formatSize(i.sizeBytes),
        i.artifacts.kernelRef ?? (i.artifacts.kernelPath ? 'custom' : 'default'),
        ago(i.createdAt),
      ]);
      ctx.out.write(renderTable(['NAME', 'SOURCE', 'MANAGED', 'SIZE', 'KERNEL', 'CREATED'], rows));
    });

  image
    .command('show')
    .description('show an image: source, digest, files, kernel, config, fidelity report')
    .argument('<image>', 'image name')
    .option('--json', 'print JSON')
    .action(async (name, opts) => {
      const r = await (await ctx.client()).call('image.show', { name });
      ctx.out.write(opts.json ? renderJson(r) : renderImage(r.image, r.report, r.usedBy, r.warmTemplates));
    });

  image
    .command('catalog')
    .description('list the image catalog (what `banger image pull NAME` can fetch or build)')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { entries } = await (await ctx.client()).call('image.catalog', {});
      if (opts.json) {
        ctx.out.write(renderJson(entries));
        return;
      }
      const rows = entries.map((e) => [e.name, e.state, e.kind, e.kernelRef ?? '-', e.description]);
      ctx.out.write(renderTable(['NAME', 'STATE', 'KIND', 'KERNEL', 'DESCRIPTION'], rows));
    });

  withKernelOptions(
    image
      .command('pull')
      .description('pull a catalog image (bundle or recipe) or an OCI image from a registry')
      .argument('<name-or-ref>', 'a catalog name (see: banger image catalog) or an OCI reference')
      .option('--name <name>', 'image name (default: from the catalog entry or the reference)')
      .option('--platform <os/arch>', 'platform of a multi-arch image (default: this host)')
      .addOption(sizeOption()),
  )
    .addHelpText(
      'after',
      examples(
        'banger image pull debian-bookworm',
        'banger image pull docker.io/library/debian:bookworm --kernel-ref debian-cloud-amd64',
        'banger image pull 127.0.0.1:5000/busybox:1.35 --name bb',
      ),
    )
    .action(async (ref, opts) => {
      const { image: i } = await callWithProgress(ctx, 'image.pull', {
        ref,
        name: opts.name,
        platform: opts.platform,
        sizeBytes: sizeParam(opts.size),
        ...kernelParams(opts),
      });
      ctx.out.write(`pulled ${i.name}: ${describeSource(i.source)} (${formatSize(i.sizeBytes)})\n`);
    });

  withKernelOptions(
    image
      .command('import')
      .description(
        'import a rootfs tarball (plain, gzip, zstd or xz; `-` reads stdin, e.g. from docker export)',
      )
      .argument('<name>', 'image name')
      .argument('<file>', 'the tarball, or - for stdin')
      .addOption(sizeOption()),
  )
    .addHelpText(
      'after',
      examples(
        'banger image import alp alpine-minirootfs-3.20.3-x86_64.tar.gz',
        'docker export web | banger image import web -',
      ),
    )
    .action(async (name, file, opts) => {
      const params = { name, sizeBytes: sizeParam(opts.size), ...kernelParams(opts) };
      const { image: i } =
        file === '-'
          ? await withStdinFifo(ctx, (fifo) =>
              callWithProgress(ctx, 'image.import', { ...params, file: fifo, stdin: true }),
            )
          : await callWithProgress(ctx, 'image.import', { ...params, file: resolve(file) });
      ctx.out.write(`imported ${i.name}: ${describeSource(i.source)} (${formatSize(i.sizeBytes)})\n`);
    });

  withKernelOptions(
    image
      .command('register')
      .description('register host files as an unmanaged image (nothing is copied)')
      .requiredOption('--name <name>', 'image name')
      .requiredOption('--rootfs <ext4>', 'an ext4 root filesystem'),
  )
    .addHelpText(
      'after',
      examples('banger image register --name mine --rootfs ./rootfs.ext4 --kernel-ref debian-cloud-amd64'),
    )
    .action(async (opts) => {
      const { image: i } = await (await ctx.client()).call('image.register', {
        name: opts.name,
        rootfs: resolve(opts.rootfs),
        ...kernelParams(opts),
      });
      ctx.out.write(`registered ${i.name}: ${i.artifacts.rootfsPath}\n`);
    });

  image
    .command('promote')
    .description('copy a registered image into banger-owned files (managed)')
    .argument('<image>', 'image name')
    .action(async (name) => {
      const { image: i } = await callWithProgress(ctx, 'image.promote', { name });
      ctx.out.write(`promoted ${i.name}: ${i.artifacts.rootfsPath}\n`);
    });

  image
    .command('rm')
    .alias('delete')
    .description('remove an image (refused while a VM uses it)')
    .argument('<image>', 'image name')
    .action(async (name) => {
      await (await ctx.client()).call('image.delete', { name });
      ctx.out.write(`removed ${name}\n`);
    });

  image
    .command('cache')
    .description('the OCI blob cache')
    .command('prune')
    .description('empty the OCI blob cache')
    .option('--dry-run', 'only say what would be freed')
    .action(async (opts) => {
      const r = await (await ctx.client()).call('image.cachePrune', { dryRun: Boolean(opts.dryRun) });
      ctx.out.write(
        `${r.dryRun ? 'would free' : 'freed'} ${formatSize(r.bytes)} across ${r.removed} blob(s) in ${r.dir}\n`,
      );
    });

  image
    .command('bundle')
    .description('pack an image bundle (.tar.zst of rootfs.ext4 + manifest.json) for a catalog')
    .requiredOption('--name <name>', 'image name recorded in the manifest')
    .addOption(new Option('--rootfs <ext4>', 'pack this ext4 as it is').conflicts('rootfsTar'))
    .addOption(new Option('--rootfs-tar <file>', 'build the ext4 from a rootfs tarball (- for stdin)'))
    .option('--kernel-ref <kernel>', 'kernel the image boots with')
    .option('--distro <distro>', 'distribution, for the catalog')
    .option('--arch <arch>', 'architecture (default: this host)')
    .option('--description <text>', 'one line for the catalog')
    .option('--size <size>', 'ext4 size when building from --rootfs-tar')
    .option('--level <n>', 'zstd level (default 19)')
    .requiredOption('--out <file>', 'the .tar.zst to write')
    .addHelpText(
      'after',
      examples(
        'docker export c | banger image bundle --name web --rootfs-tar - --kernel-ref debian-cloud-amd64 --out web.tar.zst',
      ),
    )
    .action(async (opts) => {
      if (!opts.rootfs && !opts.rootfsTar) throw badRequest('give --rootfs <ext4> or --rootfs-tar <file|->');
      const params = {
        name: opts.name,
        kernelRef: opts.kernelRef,
        distro: opts.distro,
        arch: opts.arch,
        description: opts.description,
        sizeBytes: sizeParam(opts.size),
        level: opts.level === undefined ? undefined : Number(opts.level),
        out: resolve(opts.out),
      };
      const r =
        opts.rootfsTar === '-'
          ? await withStdinFifo(ctx, (fifo) =>
              callWithProgress(ctx, 'image.bundle', { ...params, rootfsTar: fifo, stdin: true }),
            )
          : await callWithProgress(ctx, 'image.bundle', {
              ...params,
              rootfs: opts.rootfs ? resolve(opts.rootfs) : undefined,
              rootfsTar: opts.rootfsTar ? resolve(opts.rootfsTar) : undefined,
            });
      ctx.out.write(`${r.path}\nsha256 ${r.sha256}\nsize ${r.sizeBytes}\n`);
    });

  return image;
}
