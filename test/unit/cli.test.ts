import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const bin = new URL('../../bin/sluice', import.meta.url).pathname;

describe('bin/sluice', () => {
  it('lists every role in --help', () => {
    const out = execFileSync(bin, ['--help'], { encoding: 'utf8' });
    for (const role of ['controller', 'eventsource', 'sensor', 'dev', 'lint', 'dlq']) {
      expect(out).toMatch(new RegExp(`^\\s+${role}\\b`, 'm'));
    }
  });

  it('prints the package version', () => {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
    expect(out).toMatch(/^\d+\.\d+\.\d+/);
  });
});
