/**
 * banger's description of the Firecracker API (src/vmm/firecracker/contract.ts) is our own file; this
 * holds it against Firecracker's swagger file where ../shared has it: every route exists with that
 * method, every body field exists with the same type, enum and bounds, the required fields are the same,
 * and no route is said to be accepted in a phase the file forbids. Without ../shared the contract still
 * runs in every Firecracker test (the fake answers by it); only this cross-check waits for the file.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  contractProblems,
  FIRECRACKER_ROUTES,
  matchRoute,
} from '../../../../src/vmm/firecracker/contract.js';
import {
  API_YAML,
  findApiYaml,
  loadSwagger,
  resolveRef,
  type Swagger,
  type SwaggerSchema,
} from '../../../fixtures/firecracker-fake/spec.js';
import { missingShared } from '../../../fixtures/skip.js';

type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  additionalProperties?: boolean;
};

/** Where ours and theirs differ, as readable lines (empty when ours is faithful). */
function differences(doc: Swagger, ours: JsonSchema, theirs: SwaggerSchema, at: string): string[] {
  const t = resolveRef(doc, theirs);
  const out: string[] = [];
  const theirType = t.type ?? (t.properties ? 'object' : undefined);
  if (ours.type !== theirType) out.push(`${at}: type ${ours.type} here, ${theirType} in the file`);
  if (t.enum || ours.enum) {
    const a = [...(ours.enum ?? [])].map(String).sort();
    const b = [...(t.enum ?? [])].map(String).sort();
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${at}: enum ${a} here, ${b} in the file`);
  }
  if (t.minimum !== undefined && ours.minimum !== t.minimum)
    out.push(`${at}: minimum ${ours.minimum} here, ${t.minimum} in the file`);
  // zod bounds every integer by the safe-integer range; the file says nothing there.
  const ourMax = ours.maximum === Number.MAX_SAFE_INTEGER ? undefined : ours.maximum;
  if (ourMax !== t.maximum) out.push(`${at}: maximum ${ourMax} here, ${t.maximum} in the file`);
  if (ours.type === 'object') {
    const a = [...(ours.required ?? [])].sort();
    const b = [...(t.required ?? [])].sort();
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${at}: required [${a}] here, [${b}] in the file`);
    if (ours.additionalProperties !== false)
      out.push(`${at}: must refuse unknown fields, as Firecracker does`);
    for (const [name, prop] of Object.entries(ours.properties ?? {})) {
      const theirProp = t.properties?.[name];
      if (!theirProp) out.push(`${at}.${name}: not in the file`);
      else out.push(...differences(doc, prop, theirProp, `${at}.${name}`));
    }
  }
  if (ours.type === 'array' && ours.items && t.items)
    out.push(...differences(doc, ours.items, t.items, `${at}[]`));
  return out;
}

const yaml = findApiYaml();

describe('the Firecracker API contract', () => {
  it('refuses unknown routes, unknown fields, wrong types, and bodies where none belong', () => {
    expect(contractProblems('PUT', '/nonsense', {})).toEqual(['no PUT /nonsense in the API']);
    expect(contractProblems('GET', '/vsock', undefined)).toEqual(['no GET /vsock in the API']);
    expect(contractProblems('PUT', '/vsock', { guest_cid: 2, uds_path: '/x' })).toEqual([
      'body.guest_cid: below 3',
    ]);
    expect(contractProblems('PUT', '/vsock', { guest_cid: 3, uds_path: '/x', extra: 1 })).toEqual([
      'body.extra: unknown field',
    ]);
    expect(contractProblems('PUT', '/vsock', { guest_cid: 3.5 })).toEqual([
      'body.guest_cid: expected an integer',
      'body.uds_path: required',
    ]);
    expect(contractProblems('PUT', '/actions', { action_type: 'Reboot' })).toEqual([
      'body.action_type: not one of FlushMetrics, InstanceStart, SendCtrlAltDel',
    ]);
    expect(contractProblems('PUT', '/boot-source', undefined)).toEqual(['body: required']);
    expect(contractProblems('GET', '/', { a: 1 })).toEqual(['this operation takes no body']);
    expect(contractProblems('PUT', '/drives/rootfs', { drive_id: 'rootfs', is_root_device: true })).toEqual(
      [],
    );
    expect(matchRoute('put', '/drives/disk%201')?.params).toEqual({ drive_id: 'disk 1' });
  });

  it.skipIf(!yaml)(
    `matches Firecracker's swagger file, route by route and field by field${yaml ? '' : ` (skipped: ${missingShared(API_YAML)})`}`,
    () => {
      const doc = loadSwagger(yaml as string);
      const problems: string[] = [];
      for (const route of FIRECRACKER_ROUTES) {
        const where = `${route.method} ${route.path}`;
        const op = doc.paths[route.path]?.[route.method.toLowerCase()];
        if (!op) {
          problems.push(`${where}: not in the file`);
          continue;
        }
        const summary = op.summary ?? '';
        if (/pre-boot only/i.test(summary) && route.phase !== 'pre-boot')
          problems.push(`${where}: the file says pre-boot only, here ${route.phase}`);
        if (/post-boot only/i.test(summary) && route.phase !== 'post-boot')
          problems.push(`${where}: the file says post-boot only, here ${route.phase}`);
        // A stricter phase than the file states is allowed only where Firecracker refuses it in practice
        // (PATCH /vm before InstanceStart: there is no microVM to pause).
        if (route.phase === 'pre-boot' && !/pre-boot only/i.test(summary))
          problems.push(`${where}: pre-boot only here, not in the file`);
        const bodyParam = op.parameters?.find((p) => p.in === 'body');
        if (!route.body) {
          if (bodyParam) problems.push(`${where}: the file takes a body, here none`);
          continue;
        }
        if (!bodyParam?.schema) {
          problems.push(`${where}: the file takes no body`);
          continue;
        }
        const ours = z.toJSONSchema(route.body) as JsonSchema;
        problems.push(...differences(doc, ours, bodyParam.schema, `${where} body`));
      }
      expect(problems).toEqual([]);
    },
  );
});
