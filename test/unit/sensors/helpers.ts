// Shared by the sensor unit tests: upstream example Sensors and CloudEvents to feed them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Sensor } from '../../../src/api/sensor.ts';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';

export const sensorExamplesDir = new URL(
  '../../../../shared/reference/argo-events/examples/sensors',
  import.meta.url,
).pathname;
export const haveExamples = existsSync(sensorExamplesDir);

export function exampleFiles(): string[] {
  return haveExamples
    ? readdirSync(sensorExamplesDir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
    : [];
}

/** Parses an example file with the Sensor schema (it must be valid). */
export function loadSensor(file: string): Sensor {
  const docs = parseAllDocuments(readFileSync(join(sensorExamplesDir, file), 'utf8'));
  const doc = docs.map((d) => d.toJS() as { kind?: string }).find((d) => d?.kind === 'Sensor');
  if (!doc) throw new Error(`${file}: no Sensor`);
  return Sensor.parse(doc);
}

export function event(data: unknown, over: Partial<CloudEvent> = {}): CloudEvent {
  return {
    specversion: '1.0',
    id: 'e-1',
    source: 'webhook',
    type: 'webhook',
    subject: 'example',
    time: '2024-01-15T12:00:00.000Z',
    datacontenttype: 'application/json',
    data,
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    ...over,
  };
}
