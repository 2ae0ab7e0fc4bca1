// The process guard (src/cli/guard.ts): an unhandled rejection or an uncaught exception is logged
// and counted and the process keeps running. Run in a child process, since the test runner has
// its own handlers for both.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const guard = fileURLToPath(new URL('../../../src/cli/guard.ts', import.meta.url));

const script = `
import { installProcessGuard } from ${JSON.stringify(guard)};
import { Registry } from 'prom-client';
const registry = new Registry();
const lines = [];
installProcessGuard(registry, () => ({ error: (o, msg) => lines.push({ ...o, msg }) }));
Promise.reject(new Error('nobody handles me'));
setTimeout(() => { throw new Error('nobody catches me'); }, 10);
setTimeout(async () => {
  process.stdout.write(JSON.stringify({ lines, metrics: await registry.metrics(), alive: true }));
}, 100);
`;

describe('process guard', () => {
  it('logs and counts an unhandled rejection and an uncaught exception, and the process goes on', () => {
    const out = execFileSync(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script],
      {
        cwd: fileURLToPath(new URL('../../..', import.meta.url)),
        encoding: 'utf8',
      },
    );
    const r = JSON.parse(out) as {
      lines: Array<{ kind: string; err: string }>;
      metrics: string;
      alive: boolean;
    };
    expect(r.alive).toBe(true);
    expect(r.lines.map((l) => [l.kind, l.err])).toEqual([
      ['unhandledRejection', 'nobody handles me'],
      ['uncaughtException', 'nobody catches me'],
    ]);
    expect(r.metrics).toMatch(/sluice_unexpected_errors_total\{kind="unhandledRejection"\} 1/);
    expect(r.metrics).toMatch(/sluice_unexpected_errors_total\{kind="uncaughtException"\} 1/);
  });
});
