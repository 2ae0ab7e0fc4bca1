import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { validateText } from '../../../src/api/validate.ts';
import { lint } from '../../../src/cli/lint.ts';
import { INVALID_CASES, validEventBus, validEventSource, validSensor } from '../../fixtures/manifests.ts';

const bin = new URL('../../../bin/sluice', import.meta.url).pathname;

describe('sluice lint', () => {
  it('accepts the valid base manifests', () => {
    const text = [validEventBus(), validEventSource(), validSensor()].map((m) => stringify(m)).join('---\n');
    const r = validateText(text);
    expect(r.problems).toEqual([]);
    expect(r.objects.map((o) => `${o.kind}/${o.name}`)).toEqual([
      'EventBus/default',
      'EventSource/webhook',
      'Sensor/sensor',
    ]);
  });

  it(`rejects ${INVALID_CASES.length} invalid manifests naming the offending field`, () => {
    expect(INVALID_CASES.length).toBeGreaterThanOrEqual(30);
    const missed: string[] = [];
    for (const c of INVALID_CASES) {
      const r = validateText(stringify(c.manifest));
      const paths = r.problems.map((p) => p.path);
      if (!paths.includes(c.lintPath))
        missed.push(`${c.name}: expected ${c.lintPath}, got ${JSON.stringify(r.problems)}`);
    }
    expect(missed).toEqual([]);
  });

  it('suggests the intended field for a typo', () => {
    const c = INVALID_CASES.find((x) => x.name === 'sensor: typo in dependency')!;
    const r = validateText(stringify(c.manifest));
    expect(r.problems).toContainEqual(
      expect.objectContaining({
        path: 'spec.dependencies[0].eventSourceNmae',
        message: 'unknown field (did you mean "eventSourceName"?)',
      }),
    );
  });

  it('reports YAML syntax errors with a line and skips other kinds', () => {
    const r = validateText('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\nkind: [unclosed\n');
    expect(r.skipped).toBe(1);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.message).toMatch(/^YAML error at line \d+/);
  });

  it('prints file: kind/name: path: message and exits 1 on problems, 0 when clean', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lint-'));
    const bad = INVALID_CASES.find((x) => x.name === 'eventbus: replicas 2')!;
    writeFileSync(join(dir, 'bad.yaml'), stringify(bad.manifest));
    writeFileSync(join(dir, 'good.yaml'), stringify(validSensor()));
    const res = spawnSync(bin, ['lint', dir], { encoding: 'utf8' });
    expect(res.status).toBe(1);
    expect(res.stdout.trim().split('\n')).toEqual([
      `${join(dir, 'bad.yaml')}: EventBus/default: spec.jetstream.replicas: replicas may be 1 or 3 and more, but not 2 (no quorum)`,
    ]);
    const ok = execFileSync(bin, ['lint', join(dir, 'good.yaml')], { encoding: 'utf8' });
    expect(ok).toBe('');
  });

  it('counts files and objects across folders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lint-'));
    writeFileSync(
      join(dir, 'a.yaml'),
      [validEventBus(), validSensor()].map((m) => stringify(m)).join('---\n'),
    );
    const lines: string[] = [];
    const s = lint([dir, join(dir, 'missing.yaml')], (l) => lines.push(l));
    expect(s).toEqual({ files: 1, objects: 2, problems: 1, warnings: 0 });
    expect(lines[0]).toMatch(/missing\.yaml: cannot read: ENOENT/);
  });

  it('reports discard: old as lossy and a bad streamConfig as a problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lint-'));
    const bus = (streamConfig: string, name: string) => ({
      ...validEventBus(),
      metadata: { name },
      spec: { jetstream: { streamConfig } },
    });
    writeFileSync(
      join(dir, 'a.yaml'),
      [bus('maxMsgs: 50\ndiscard: old', 'lossy'), bus('maxMsgs: lots', 'bad'), bus('maxMsgs: 50', 'fine')]
        .map((m) => stringify(m))
        .join('---\n'),
    );
    const lines: string[] = [];
    const s = lint([dir], (l) => lines.push(l));
    expect(s).toEqual({ files: 1, objects: 3, problems: 1, warnings: 1 });
    expect(lines.join('\n')).toMatch(
      /EventBus\/lossy: warning: spec\.jetstream\.streamConfig: lossy: discard: old/,
    );
    expect(lines.join('\n')).toMatch(/EventBus\/bad: spec\.jetstream\.streamConfig: streamConfig\.maxMsgs/);
  });
});
