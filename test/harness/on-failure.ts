// Setup file for server-backed tests: when a test fails, print the tail of the shared servers'
// logs next to the failure so the cause is visible without digging through files.
import { existsSync, readFileSync } from 'node:fs';
import { beforeEach, inject, onTestFailed } from 'vitest';

function tail(path: string, lines = 25): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
}

beforeEach(() => {
  onTestFailed(() => {
    const logs = [inject('natsLog'), ...inject('kubeLogs')].filter((p): p is string => !!p);
    for (const log of logs) console.error(`--- tail of ${log} ---\n${tail(log)}`);
  });
});
