import type { ApplyResult } from '../../system/install-apply.js';
import type { InstallPlan } from '../../system/install-plan.js';
import type { EndpointStatus, SystemStatus } from '../../system/status.js';

/** `system install --dry-run`: every directory, file and command, as an install would do them. */
export function renderPlan(plan: InstallPlan): string {
  const lines = [
    `system install for ${plan.owner.name} (uid ${plan.owner.uid}): dry run, nothing is written or run`,
    '',
    'directories:',
    ...plan.dirs.map((d) => `  ${d.path.padEnd(22)} ${`${d.owner}:${d.group}`.padEnd(16)} ${d.mode}`),
    '',
    'files:',
  ];
  for (const f of plan.files) {
    const keep = f.keepIfPresent ? ', kept if present' : '';
    lines.push(`--- ${f.path} (${f.owner}:${f.group} ${f.mode}${keep})`, f.content.trimEnd(), '');
  }
  lines.push('commands:', ...plan.commands.map((c) => `  ${c.join(' ')}`), '');
  return lines.join('\n');
}

/** What an install did. */
export function renderInstalled(plan: InstallPlan, done: ApplyResult, root: string | undefined): string {
  const lines = [
    `system install for ${plan.owner.name} (uid ${plan.owner.uid})${root ? ` below ${root}` : ''}:`,
    ...done.dirs.map((d) => `  ${d.created ? 'made' : 'kept'} ${d.path}`),
    ...done.files.map((f) => `  ${f.action} ${f.path}`),
    ...done.commands.map((c) => `  ran ${c.join(' ')}`),
  ];
  lines.push(
    root
      ? '  no systemctl command was run (--root): enable the units where the tree is installed'
      : '  bangerd-root and bangerd are enabled and started; check with: banger system status',
    '',
  );
  return lines.join('\n');
}

export function renderStatus(s: SystemStatus): string {
  const r = s.record;
  const lines = [
    `systemd:  ${s.systemd ? 'running' : 'not the init here (use banger system run)'}`,
    `install:  ${
      r
        ? `owner ${r.owner_user} (uid ${r.owner_uid}), version ${r.version}, installed ${r.installed_at}`
        : (s.recordError ?? 'no install record (not installed)')
    }`,
    ...s.units.map(
      (u) => `unit:     ${u.unit} ${u.active} (${u.enabled})${u.mainPid ? ` pid ${u.mainPid}` : ''}`,
    ),
    `helper:   ${endpoint(s.helper, (h) => `bangerd-root ${h.version}, serving uid ${h.ownerUid}`)}`,
    `daemon:   ${endpoint(s.daemon, (d) => `bangerd ${d.version}, pid ${d.pid}`)}`,
    `process:  ${
      s.processes.length === 0
        ? 'none'
        : s.processes.map((p) => `${p.program} pid ${p.pid} uid ${p.uid}`).join('; ')
    }`,
    `healthy:  ${s.healthy ? 'yes' : 'no'}`,
    '',
  ];
  return lines.join('\n');
}

function endpoint(e: EndpointStatus, ok: (e: EndpointStatus) => string): string {
  return e.version !== undefined ? `${ok(e)} on ${e.socket}` : `not answering on ${e.socket} (${e.error})`;
}
