/**
 * Harness quickstart: one turn of a small scripted "notes" agent, in a sandbox whose workspace
 * lives on across turns. Each run is one turn in its own process; run it twice with the same
 * --session and the second turn finds the files the first one made (restored from the session's
 * snapshot). Run with --help for the options.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { directorySource } from '../client-sdk/src/harness/node-source.js';
import {
  type ExecutionGuard,
  Harness,
  InProcessGuard,
  IsolationScope,
  RedisGuard,
  SandboxClient,
} from '../client-sdk/src/index.js';

const HELP = `Usage: npx tsx examples/harness-quickstart.ts [options]

Runs one turn of a scripted notes agent through the harness: the agent's workspace definition
(AGENTS.md, skills/, ...) is projected into a sandbox restored from the session's latest snapshot,
the agent reads notes.md, adds a note and runs its skill, and the workspace is snapshotted under
the session's key. Run it twice with the same --session: the second process sees the first's note.

Options:
  --server URL      the runtime-sandbox server (env RUNTIME_SANDBOX_URL; default http://127.0.0.1:8000)
  --token TOKEN     the server's bearer token (env BEARER_TOKEN)
  --session ID      the session whose workspace the turn works in (default: quickstart)
  --note TEXT       the note this turn adds (default: "note written at <time>")
  --agent-dir DIR   a local agent definition to project (AGENTS.md, skills/, subagents/,
                    knowledge/); default: a small demo agent written to a temp dir
  --redis URL       serialise turns across processes with a Redis lease, e.g. redis://127.0.0.1:6379
                    (default: within this process only)
  --type TYPE       sandbox type (default: the server's default type)
  --json            print the turn's outcome as one JSON line
  -h, --help        this text

Try it:
  npm start                                   # a server on http://127.0.0.1:8000 (another shell)
  npx tsx examples/harness-quickstart.ts --session demo --note first
  npx tsx examples/harness-quickstart.ts --session demo --note second
  # the second run prints: earlier notes: first
`;

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: process.env.RUNTIME_SANDBOX_URL ?? 'http://127.0.0.1:8000' },
    token: { type: 'string', default: process.env.BEARER_TOKEN },
    session: { type: 'string', default: 'quickstart' },
    note: { type: 'string' },
    'agent-dir': { type: 'string' },
    redis: { type: 'string' },
    type: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

/** A two-file demo agent: instructions, and a skill whose script must stay executable. */
function writeDemoAgent(): string {
  const dir = mkdtempSync(join(tmpdir(), 'harness-quickstart-agent-'));
  writeFileSync(join(dir, 'AGENTS.md'), '# Notes agent\nKeep notes in notes.md, one per line.\n');
  mkdirSync(join(dir, 'skills', 'count-notes'), { recursive: true });
  writeFileSync(join(dir, 'skills', 'count-notes', 'SKILL.md'), 'Run count.sh to count the notes.\n');
  writeFileSync(
    join(dir, 'skills', 'count-notes', 'count.sh'),
    '#!/bin/sh\necho "$(wc -l < notes.md) notes"\n',
    {
      mode: 0o755,
    },
  );
  return dir;
}

const demoDir = values['agent-dir'] === undefined ? writeDemoAgent() : undefined;
const redis = values.redis === undefined ? undefined : new (await import('ioredis')).Redis(values.redis);
const guard: ExecutionGuard = redis ? new RedisGuard({ redis }) : new InProcessGuard();
const harness = new Harness({
  client: new SandboxClient({ baseUrl: values.server, ...(values.token ? { token: values.token } : {}) }),
  scope: IsolationScope.SESSION,
  source: directorySource(values['agent-dir'] ?? demoDir ?? '.'),
  guard,
  ...(values.type ? { sandbox: { type: values.type } } : {}),
});

try {
  const note = values.note ?? `note written at ${new Date().toISOString()}`;
  const turn = await harness.runTurn({ sessionId: values.session }, async (tools) => {
    // What a model would do with its tools, scripted.
    const read = await tools.call('read_file', { path: 'notes.md' });
    const earlier = read.ok ? (read.result as { content: string }).content.split('\n').filter(Boolean) : [];
    await tools.writeFile.run({
      path: 'notes.md',
      content: [...earlier, note].map((n) => `${n}\n`).join(''),
    });
    const count = await tools.execute.run({ command: './skills/count-notes/count.sh' });
    const files = await tools.globFiles.run({ pattern: '**/*' });
    return { earlierNotes: earlier, skillOutput: count.stdout.trim(), files: files.paths };
  });
  const outcome = {
    key: turn.key,
    snapshotId: turn.snapshot.id,
    version: turn.snapshot.version,
    restoredFrom: turn.restoredFrom,
    projected: turn.projection.uploaded,
    fencingToken: turn.fencingToken,
    ...turn.value,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(outcome)}\n`);
  } else {
    process.stdout.write(
      [
        `session ${values.session}: turn saved as version ${outcome.version} of ${outcome.key}`,
        `restored from: ${outcome.restoredFrom ?? 'nothing (a new workspace)'}`,
        `projected: ${outcome.projected.length ? outcome.projected.join(', ') : 'nothing changed'}`,
        `earlier notes: ${outcome.earlierNotes.length ? outcome.earlierNotes.join(' | ') : '(none)'}`,
        `skill says: ${outcome.skillOutput}`,
        `workspace: ${outcome.files.join(', ')}`,
        '',
      ].join('\n'),
    );
  }
} catch (error) {
  process.stderr.write(`the turn failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await harness.close();
  redis?.disconnect();
  if (demoDir) rmSync(demoDir, { recursive: true, force: true });
}
