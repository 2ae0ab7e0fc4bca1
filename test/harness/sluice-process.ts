// Runs `bin/sluice <role>` as a real child process (as a pod would run it), with its JSON logs
// in a file, and finds its metrics port from the startup log line.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess, waitFor } from './proc.ts';

const bin = new URL('../../bin/sluice', import.meta.url).pathname;

export interface SluiceProcess {
  proc: ManagedProcess;
  metricsPort: number;
  metrics(): Promise<string>;
  /** Sum of a counter/gauge over all label sets matching `labels` (substring match on the label text). */
  metricValue(name: string, labels?: string): Promise<number>;
  logs(): string;
}

export async function startSluice(args: string[], env: NodeJS.ProcessEnv = {}): Promise<SluiceProcess> {
  const dir = mkdtempSync(join(tmpdir(), `sluice-${args[0]}-`));
  const logFile = join(dir, 'sluice.log');
  const proc = new ManagedProcess(`sluice ${args[0]}`, bin, args, logFile, { ...process.env, ...env });
  proc.start();
  const metricsPort = await waitFor(
    `sluice ${args[0]} to report its metrics port`,
    () => {
      if (!proc.running) throw new Error(`exited: ${proc.tail()}`);
      for (const line of readFileSync(logFile, 'utf8').split('\n')) {
        if (!line.startsWith('{')) continue;
        const j = JSON.parse(line) as { metricsPort?: number };
        if (j.metricsPort) return j.metricsPort;
      }
      return undefined;
    },
    { timeoutMs: 30_000, onTimeout: () => proc.tail() },
  );
  const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return {
    proc,
    metricsPort,
    metrics,
    async metricValue(name, labels = '') {
      let sum = 0;
      for (const line of (await metrics()).split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
        if (m && m[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
      }
      return sum;
    },
    logs: () => proc.tail(200),
  };
}
