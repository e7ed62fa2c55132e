#!/usr/bin/env node
// An agent loop over `banger mcp serve`: what an AI coding agent does, with a scripted policy standing in
// for the model. It connects an MCP client (the official @modelcontextprotocol/sdk) to banger over stdio,
// lists the tools, then asks vm_run one command at a time; each answer (stdout, stderr, exit code,
// timedOut, truncated flags) goes into the transcript the policy reads to pick its next step.
//
//   node examples/mcp-agent-loop.mjs
//
// Environment: BANGER_BIN (default `banger` on PATH), BANGER_IMAGE (default: banger's default image).
// Prints a JSON report on stdout; exits non-zero when a step fails.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const image = process.env.BANGER_IMAGE || undefined;

/** The stand-in for a model: given what happened so far, the next command to run, or null when done. */
function nextStep(transcript) {
  if (transcript.length === 0) return { command: 'cat /etc/os-release', why: 'which distribution is this?' };
  const last = transcript.at(-1);
  if (last.result.timedOut) return null; // a real agent would retry with a larger timeout
  if (transcript.length === 1) return { command: 'uname -r', why: 'which kernel runs it?' };
  if (transcript.length === 2) {
    // An oversized answer comes back truncated, with the byte count: the agent narrows its question.
    return { command: 'seq 1 100000 | wc -l', why: 'count without flooding the context' };
  }
  return null;
}

function text(result) {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

const transport = new StdioClientTransport({
  command: process.env.BANGER_BIN || 'banger',
  args: ['mcp', 'serve', '--timeout', '120'],
  env: process.env,
  stderr: 'inherit', // banger's own log lines; stdout is the protocol
});
const client = new Client({ name: 'banger-agent-loop-example', version: '1.0.0' });
await client.connect(transport);

try {
  const { tools } = await client.listTools();
  if (!tools.some((t) => t.name === 'vm_run')) throw new Error('this banger has no vm_run tool');

  const transcript = [];
  for (let step = nextStep(transcript); step; step = nextStep(transcript)) {
    const result = await client.callTool(
      { name: 'vm_run', arguments: { command: step.command, ...(image ? { image } : {}), timeout: 60 } },
      undefined,
      { timeout: 15 * 60_000 }, // booting a VM without KVM takes a while
    );
    if (result.isError) throw new Error(`vm_run ${step.command}: ${text(result)}`);
    transcript.push({ ...step, result: result.structuredContent });
    if (result.structuredContent.exitCode !== 0) throw new Error(`${step.command} failed: ${text(result)}`);
  }

  const os = transcript[0]?.result.stdout.match(/^PRETTY_NAME=(.*)$|^VERSION_ID=(.*)$/gm)?.join(' ') ?? '';
  process.stdout.write(
    `${JSON.stringify(
      {
        os,
        steps: transcript.map((t) => ({
          command: t.command,
          why: t.why,
          exitCode: t.result.exitCode,
          stdout: t.result.stdout.trim(),
          truncated: t.result.stdoutTruncated,
        })),
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await client.close();
}
