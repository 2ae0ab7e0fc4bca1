// specFor of a prepared trigger: a spec without parameters is one frozen copy for every event;
// a type whose runner applies its own parameters (kafka, k8s, argoWorkflow) does not get them
// applied twice (an `append` would double).
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { envelope } from '../../../src/eventsources/envelope.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { sensorMetrics } from '../../../src/sensors/metrics.ts';
import { applyParameters, buildPayload } from '../../../src/sensors/params/index.ts';
import { triggerPreparer } from '../../../src/sensors/prepare.ts';
import type { TriggerRunner } from '../../../src/sensors/triggers/trigger.ts';

const runner = (type: string): TriggerRunner => ({ type, fire: async () => ({ detail: 'ok' }) });
const { prepare } = triggerPreparer({
  namespace: 'ns',
  name: 's',
  runners: { http: () => runner('http'), kafka: () => runner('kafka') },
  params: { applyParameters, buildPayload },
  metrics: sensorMetrics(new Registry()),
  log: createLogger({ level: 'silent' }),
});
const events = { d: envelope({ source: 'es', type: 'webhook', subject: 'x', data: { v: 'X' } }) };
const append = [{ src: { dependencyName: 'd', dataKey: 'v' }, dest: 'topic', operation: 'append' as const }];

describe('specFor', () => {
  it('a spec without parameters: the same frozen object every time', () => {
    const t = prepare({ template: { name: 'h', http: { url: 'http://x/', method: 'POST' } } }, 't');
    const a = t.specFor(events) as { url: string };
    expect(a).toBe(t.specFor(events));
    expect(Object.isFrozen(a)).toBe(true);
    expect(a.url).toBe('http://x/');
  });

  it('http: its own parameters applied per call, on a fresh copy', () => {
    const t = prepare(
      {
        template: {
          name: 'h',
          http: { url: 'http://x/', method: 'POST', parameters: [{ ...append[0]!, dest: 'url' }] },
        },
      },
      't',
    );
    const a = t.specFor(events) as { url: string };
    expect(a.url).toBe('http://x/X');
    expect(t.specFor(events)).not.toBe(a);
  });

  it('kafka applies its own parameters: specFor leaves them to the runner (applied once)', () => {
    const t = prepare(
      { template: { name: 'k', kafka: { url: 'b:9092', topic: 'T', parameters: append } } },
      't',
    );
    expect((t.specFor(events) as { topic: string }).topic).toBe('T');
  });
});
