// The three sluice CRDs, generated from the zod schemas. Names, short names and plurals match
// upstream Argo Events so `kubectl get eventbus,eventsources,sensors` works as users expect.
import { stringify } from 'yaml';
import { buildCrd, type CrdDefinition, type JsonSchema, type PrinterColumn } from './crd.ts';
import { EventBusSpec, EventBusStatus } from './eventbus.ts';
import { EventSourceSpec, EventSourceStatus } from './eventsource.ts';
import { SensorSpec, SensorStatus } from './sensor.ts';

/** The bus as the controller resolved it (the implicit "default" included), then the workload's pods. */
const busColumns: PrinterColumn[] = [
  { name: 'Bus', type: 'string', jsonPath: '.status.eventBusName', description: 'EventBus used' },
  {
    name: 'Available',
    type: 'string',
    jsonPath: '.status.available',
    description: 'Available/wanted pods of its Deployment (the Available condition says why)',
  },
];

export const CRD_DEFINITIONS: CrdDefinition[] = [
  {
    kind: 'EventBus',
    plural: 'eventbus',
    singular: 'eventbus',
    shortNames: ['eb'],
    description: 'An EventBus is the JetStream stream that EventSources publish to and Sensors consume from.',
    spec: EventBusSpec,
    status: EventBusStatus,
    columns: [
      {
        name: 'URL',
        type: 'string',
        jsonPath: '.status.config.jetstream.url',
        description: 'Where clients connect',
      },
    ],
  },
  {
    kind: 'EventSource',
    plural: 'eventsources',
    singular: 'eventsource',
    shortNames: ['es'],
    description:
      'An EventSource turns outside happenings (webhooks, schedules, object changes, messages) into events on an EventBus.',
    spec: EventSourceSpec,
    status: EventSourceStatus,
    columns: busColumns,
  },
  {
    kind: 'Sensor',
    plural: 'sensors',
    singular: 'sensor',
    shortNames: ['sn'],
    description:
      'A Sensor waits for events matching its dependencies and fires its triggers when their conditions hold.',
    spec: SensorSpec,
    status: SensorStatus,
    columns: busColumns,
  },
];

export function generateCrds(): Array<{ file: string; object: JsonSchema; yaml: string }> {
  return CRD_DEFINITIONS.map((def) => {
    const object = buildCrd(def);
    const header = '# Generated from src/api by `make crds`. Do not edit by hand.\n';
    return {
      file: `argoproj.io_${def.plural}.yaml`,
      object,
      yaml: header + stringify(object, { lineWidth: 0, aliasDuplicateObjects: false }),
    };
  });
}
