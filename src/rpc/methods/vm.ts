import { z } from 'zod';
import { vmCreatedBySchema, vmSchema } from '../../model/vm.js';
import { vmStatsSchema } from '../../model/vm-stats.js';
import { method, noParams } from './define.js';
import { forwardInfoSchema, forwardSpecsSchema } from './forward.js';
import { workspaceCopyParams, workspaceResultSchema } from './workspace.js';

const ref = z.string().min(1);
const size = z.string().regex(/^\d+(\.\d+)?\s*[a-zA-Z]*$/, 'a size such as "512MiB" or "8G"');

/** What `vm create` and `vm run` take; sizes as text, parsed by the daemon. */
export const vmCreateParamsSchema = z.strictObject({
  name: z.string().optional(),
  image: z.string().optional(),
  vcpu: z.number().int().min(1).max(64).optional(),
  memoryMib: z.number().int().min(128).optional(),
  diskSize: size.optional(),
  systemOverlaySize: size.optional(),
  nat: z.boolean().default(false),
  noStart: z.boolean().default(false),
  /** `[HOST_ADDR:]HOST_PORT:GUEST_PORT` forwards listening from the start, for as long as the VM runs. */
  forwards: forwardSpecsSchema.default([]),
  /** Who makes the VM when a program does (`mcp`): stored with it and shown by `vm show --json`. */
  createdBy: vmCreatedBySchema
    // The daemon's own throwaway VMs (warm templates) carry this tag and are deleted at its start.
    .refine((v) => v !== 'banger-warm', '"banger-warm" is the tag of banger\'s own template VMs')
    .optional(),
});

const execSchema = {
  argv: z.array(z.string()).min(1),
  env: z.array(z.string().regex(/^[^=]+=/, 'KEY=VALUE')).default([]),
  cwd: z.string().optional(),
  /** Forward the client's stdin (input notifications) to the command. */
  stdin: z.boolean().default(false),
  /** Run on a pseudo-terminal of this size (an interactive shell); resizes arrive as input notifications. */
  tty: z.object({ rows: z.number().int().min(1), cols: z.number().int().min(1) }).optional(),
};

const exitSchema = z.object({ exitCode: z.number().nullable(), signal: z.string().nullable() });

/** `vm.*` methods. */
export const vmMethods = {
  'vm.list': method(() => ({
    params: noParams,
    result: z.object({
      vms: z.array(vmSchema),
      /** The stats poller's last sample of each running VM, by VM id. */
      samples: z.record(z.string(), vmStatsSchema).default({}),
    }),
    summary: 'Every VM in the store, any state, with the last stats sample of those running.',
  })),
  'vm.show': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ vm: vmSchema, forwards: z.array(forwardInfoSchema).optional() }),
    summary: 'One VM by id, name or unique prefix.',
  })),
  'vm.create': method(() => ({
    params: vmCreateParamsSchema,
    result: z.object({ vm: vmSchema }),
    summary: 'Create a VM (pulling its image when missing) and start it unless noStart (progress events).',
  })),
  'vm.start': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ vm: vmSchema }),
    summary: 'Boot a created or stopped VM and wait for its agent.',
  })),
  'vm.stop': method(() => ({
    params: z.strictObject({
      ref,
      force: z.boolean().default(false),
      /** With force: the signal sent to the VMM (default KILL). */
      signal: z
        .string()
        .transform((s) => s.toUpperCase().replace(/^SIG/, ''))
        .pipe(z.enum(['TERM', 'KILL', 'INT', 'HUP', 'QUIT']))
        .optional(),
    }),
    result: z.object({ vm: vmSchema }),
    summary:
      'Power the guest off (kill after a timeout; at once with force) and release its runtime resources.',
  })),
  'vm.restart': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ vm: vmSchema }),
    summary: 'Stop, then start.',
  })),
  'vm.pause': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ vm: vmSchema }),
    summary:
      "Freeze a running VM's vCPUs (QEMU stop, Firecracker PATCH /vm Paused); it keeps its memory, disks, tap and IP.",
  })),
  'vm.resume': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ vm: vmSchema }),
    summary: 'Let a paused VM run again.',
  })),
  'vm.delete': method(() => ({
    params: z.strictObject({
      ref,
      /**
       * Answer after the whole teardown (the default for programs). False: answer once the VM is marked
       * `deleting` and its VMM killed, and tear the rest down after (the CLI's `vm delete` without --wait).
       */
      wait: z.boolean().default(true),
    }),
    result: z.object({ id: z.string(), name: z.string() }),
    summary: 'Kill a VM if running and remove everything it owns: disks, IP lease, directory, row.',
  })),
  'vm.ssh': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ argv: z.array(z.string()), netns: z.string().optional() }),
    summary: "The ssh command line for a running VM (banger's key, TOFU known_hosts); the CLI runs it.",
  })),
  'vm.logs': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ path: z.string() }),
    summary: "The guest console log's path (same host as the CLI).",
  })),
  'vm.exec': method(() => ({
    params: z.strictObject({ ref, ...execSchema }),
    result: exitSchema,
    summary: 'Run a command through the guest agent; output arrives as output notifications.',
  })),
  'vm.prune': method(() => ({
    params: z.strictObject({
      /** Only these VMs (the ones the user confirmed); all non-running VMs when omitted. */
      ids: z.array(z.string().min(1)).optional(),
    }),
    result: z.object({ deleted: z.array(z.object({ id: z.string(), name: z.string(), state: z.string() })) }),
    summary: 'Delete every VM that is not running (created, stopped, error), as vm.delete does.',
  })),
  'vm.set': method(() => ({
    params: z.strictObject({
      ref,
      vcpu: z.number().int().min(1).max(64).optional(),
      memoryMib: z.number().int().min(128).optional(),
      diskSize: size.optional(),
    }),
    result: z.object({ vm: vmSchema }),
    summary: "Change a stopped VM's vcpu, memory or work disk size (grow only); applies at the next start.",
  })),
  'vm.ports': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({
      name: z.string(),
      guestIp: z.string().optional(),
      ports: z.array(
        z.object({
          protocol: z.enum(['tcp', 'udp']),
          address: z.string(),
          port: z.number().int(),
          /** `<name>.vm:<port>`, or the loopback address for a loopback-only socket. */
          endpoint: z.string(),
          /** Through the guest IP. */
          ipEndpoint: z.string(),
          /** `http://<name>.vm:<port>/` when the port answered an HTTP probe. */
          url: z.string().optional(),
          process: z.string().optional(),
        }),
      ),
    }),
    summary: "A running VM's listening TCP and bound UDP ports, from its agent.",
  })),
  'vm.sshConfig': method(() => ({
    params: noParams,
    result: z.object({ path: z.string(), text: z.string() }),
    summary: "Rewrite banger's ssh_config (Host NAME.vm blocks, banger's key and known_hosts) and return it.",
  })),
  'vm.run': method(() => ({
    params: z.strictObject({
      create: vmCreateParamsSchema,
      /** The command; none leaves the VM running for the client's interactive step (ssh, a shell) or -d. */
      argv: z.array(z.string()).default([]),
      env: execSchema.env,
      cwd: execSchema.cwd,
      stdin: execSchema.stdin,
      /**
       * Delete the VM when the command ends (without a command: when the run fails); a VM whose boot failed
       * is kept, and the error (code boot_failed, with the VM and its console log) says so.
       */
      rm: z.boolean().default(false),
      /**
       * A host directory (absolute) copied to /root/repo in the guest (a git repository as git sees it);
       * the command or the shell runs there.
       */
      workspace: z.string().startsWith('/').optional(),
      ...workspaceCopyParams,
      /** Skip the mise bootstrap a workspace with .mise.toml or .tool-versions asks for. */
      noBootstrap: z.boolean().default(false),
      /** Nobody attaches after (-d): the bootstrap runs before the call returns. */
      detach: z.boolean().default(false),
      /** Start from this snapshot (its image, size and memory) through the fork path instead of booting. */
      fromSnapshot: z.string().min(1).optional(),
      /** Boot even when a warm template of the image exists (and make none afterwards). */
      cold: z.boolean().default(false),
    }),
    result: z.object({
      vm: vmSchema,
      exit: exitSchema.optional(),
      deleted: z.boolean(),
      workspace: workspaceResultSchema.optional(),
    }),
    summary:
      'Create + start a VM, copy a workspace in, run one command through the agent (rm deletes the VM afterwards).',
  })),
} as const;
