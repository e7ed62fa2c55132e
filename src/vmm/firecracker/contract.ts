/**
 * The part of Firecracker's HTTP API that banger speaks, as our own description: each route, the schema of
 * its body (objects are strict, as Firecracker's serde structs reject unknown fields) and when it is
 * accepted. The driver checks every request against it before sending, and the fake `firecracker` of the
 * tests answers by it, so both sides hold to one contract. It was written from Firecracker's swagger file
 * (v1.x); test/unit/vmm/firecracker-contract.test.ts holds it against that file where ../shared has it.
 */
import { z } from 'zod';

/** When Firecracker takes the call: before InstanceStart only ("Pre-boot only"), after it only, or both. */
export type RoutePhase = 'pre-boot' | 'post-boot' | 'any';

export interface FirecrackerRoute {
  method: 'GET' | 'PUT' | 'PATCH';
  /** With `{name}` for a path parameter, as the swagger file writes it. */
  path: string;
  /** The JSON body's schema; undefined for a call without a body. */
  body?: z.ZodType;
  phase: RoutePhase;
}

const tokenBucket = z.strictObject({
  size: z.int().min(0),
  one_time_burst: z.int().min(0).optional(),
  refill_time: z.int().min(0),
});
const rateLimiter = z.strictObject({ bandwidth: tokenBucket.optional(), ops: tokenBucket.optional() });

export const instanceActionBody = z.strictObject({
  action_type: z.enum(['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel']),
});

export const bootSourceBody = z.strictObject({
  kernel_image_path: z.string(),
  boot_args: z.string().optional(),
  initrd_path: z.string().optional(),
});

export const driveBody = z.strictObject({
  drive_id: z.string(),
  is_root_device: z.boolean(),
  path_on_host: z.string().optional(),
  is_read_only: z.boolean().optional(),
  partuuid: z.string().optional(),
  cache_type: z.enum(['Unsafe', 'Writeback']).optional(),
  io_engine: z.enum(['Sync', 'Async']).optional(),
  rate_limiter: rateLimiter.optional(),
});

export const loggerBody = z.strictObject({
  log_path: z.string().optional(),
  level: z.enum(['Error', 'Warning', 'Info', 'Debug', 'Trace', 'Off']).optional(),
  show_level: z.boolean().optional(),
  show_log_origin: z.boolean().optional(),
  module: z.string().optional(),
});

export const machineConfigBody = z.strictObject({
  vcpu_count: z.int().min(1).max(32),
  mem_size_mib: z.int(),
  smt: z.boolean().optional(),
  track_dirty_pages: z.boolean().optional(),
  huge_pages: z.enum(['None', 'Transparent', '2M']).optional(),
});

export const metricsBody = z.strictObject({ metrics_path: z.string() });

export const networkInterfaceBody = z.strictObject({
  iface_id: z.string(),
  host_dev_name: z.string(),
  guest_mac: z.string().optional(),
  mtu: z.int().min(68).max(65535).optional(),
  rx_rate_limiter: rateLimiter.optional(),
  tx_rate_limiter: rateLimiter.optional(),
});

export const vsockBody = z.strictObject({ guest_cid: z.int().min(3), uds_path: z.string() });

export const vmStateBody = z.strictObject({ state: z.enum(['Paused', 'Resumed']) });

export const snapshotCreateBody = z.strictObject({
  snapshot_path: z.string(),
  mem_file_path: z.string(),
  snapshot_type: z.enum(['Full', 'Diff']).optional(),
});

/** PATCH /drives/{drive_id} (post-boot): a restored fork points its drives at its own files. */
export const partialDriveBody = z.strictObject({
  drive_id: z.string(),
  path_on_host: z.string().optional(),
  rate_limiter: rateLimiter.optional(),
});

export const snapshotLoadBody = z
  .strictObject({
    snapshot_path: z.string(),
    mem_file_path: z.string().optional(),
    mem_backend: z
      .strictObject({ backend_type: z.enum(['File', 'Uffd']), backend_path: z.string() })
      .optional(),
    track_dirty_pages: z.boolean().optional(),
    resume_vm: z.boolean().optional(),
    network_overrides: z
      .array(z.strictObject({ iface_id: z.string(), host_dev_name: z.string() }))
      .optional(),
    vsock_override: z.strictObject({ uds_path: z.string() }).optional(),
  })
  // The file: "Exactly one of the two `mem_*` fields must be present in the body of the request."
  .refine((b) => (b.mem_file_path === undefined) !== (b.mem_backend === undefined), {
    message: 'exactly one of mem_file_path and mem_backend',
  });

/** GET / answers this: the instance's state tells a driver whether InstanceStart happened. */
export const instanceInfo = z.object({
  app_name: z.string(),
  id: z.string(),
  state: z.enum(['Not started', 'Running', 'Paused']),
  vmm_version: z.string(),
});

export const FIRECRACKER_ROUTES: readonly FirecrackerRoute[] = [
  { method: 'GET', path: '/', phase: 'any' },
  { method: 'PUT', path: '/actions', body: instanceActionBody, phase: 'any' },
  { method: 'PUT', path: '/boot-source', body: bootSourceBody, phase: 'pre-boot' },
  { method: 'PUT', path: '/drives/{drive_id}', body: driveBody, phase: 'pre-boot' },
  { method: 'PATCH', path: '/drives/{drive_id}', body: partialDriveBody, phase: 'post-boot' },
  { method: 'PUT', path: '/logger', body: loggerBody, phase: 'any' },
  { method: 'PUT', path: '/machine-config', body: machineConfigBody, phase: 'pre-boot' },
  { method: 'PUT', path: '/metrics', body: metricsBody, phase: 'any' },
  { method: 'PUT', path: '/network-interfaces/{iface_id}', body: networkInterfaceBody, phase: 'pre-boot' },
  { method: 'PUT', path: '/vsock', body: vsockBody, phase: 'pre-boot' },
  { method: 'PATCH', path: '/vm', body: vmStateBody, phase: 'post-boot' },
  { method: 'PUT', path: '/snapshot/create', body: snapshotCreateBody, phase: 'post-boot' },
  { method: 'PUT', path: '/snapshot/load', body: snapshotLoadBody, phase: 'pre-boot' },
];

export interface MatchedRoute {
  route: FirecrackerRoute;
  /** Path parameters by name, decoded. */
  params: Record<string, string>;
}

const compiled = FIRECRACKER_ROUTES.map((route) => ({
  route,
  names: [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string),
  re: new RegExp(`^${route.path.replace(/\{\w+\}/g, '([^/]+)')}$`),
}));

/** The route a request takes, or undefined when the API has no such method on that path. */
export function matchRoute(method: string, path: string): MatchedRoute | undefined {
  for (const c of compiled) {
    const m = c.route.method === method.toUpperCase() ? c.re.exec(path) : null;
    if (!m) continue;
    const params: Record<string, string> = {};
    c.names.forEach((name, i) => {
      params[name] = decodeURIComponent(m[i + 1] as string);
    });
    return { route: c.route, params };
  }
  return undefined;
}

/** Every way a request breaks the contract (empty when it holds), worded like Firecracker's faults. */
export function contractProblems(method: string, path: string, body: unknown): string[] {
  const matched = matchRoute(method, path);
  if (!matched) return [`no ${method.toUpperCase()} ${path} in the API`];
  const { route } = matched;
  if (!route.body) return body === undefined ? [] : ['this operation takes no body'];
  if (body === undefined) return ['body: required'];
  const parsed = route.body.safeParse(body, { reportInput: true });
  return parsed.success ? [] : parsed.error.issues.flatMap(describeIssue);
}

// Every number in the API is an integer; zod names a non-number given for one `number`.
const A_TYPE: Record<string, string> = {
  int: 'an integer',
  number: 'an integer',
  object: 'an object',
  array: 'an array',
};

/** One schema issue in the contract's own words: `body.<field>: <what is wrong>`. */
function describeIssue(issue: z.core.$ZodIssue): string[] {
  const at = `body${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => `${at}.${k}: unknown field`);
    case 'invalid_type':
      return [
        `${at}: ${issue.input === undefined ? 'required' : `expected ${A_TYPE[issue.expected] ?? `a ${issue.expected}`}`}`,
      ];
    case 'invalid_value':
      return [`${at}: not one of ${issue.values.map(String).join(', ')}`];
    case 'too_small':
      return [`${at}: below ${String(issue.minimum)}`];
    case 'too_big':
      return [`${at}: above ${String(issue.maximum)}`];
    case 'custom':
    case 'invalid_element':
    case 'invalid_format':
    case 'invalid_key':
    case 'invalid_union':
    case 'not_multiple_of':
      return [`${at}: ${issue.message}`];
  }
}
