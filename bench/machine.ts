// Machine details recorded with every benchmark result.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export function machineInfo(natsServer?: string): Record<string, unknown> {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    // not Linux
  }
  let natsVersion: string | undefined;
  if (natsServer) {
    try {
      natsVersion = execFileSync(natsServer, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      natsVersion = undefined;
    }
  }
  return {
    cores: cpus().length,
    cpuModel,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    natsServer: natsVersion,
    date: new Date().toISOString(),
  };
}
