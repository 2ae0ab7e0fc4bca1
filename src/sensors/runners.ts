// The trigger runners this build ships, by template key. Keep the keys equal to
// SUPPORTED_TRIGGER_TYPES (supported.ts; a unit test checks it).
import { httpTrigger } from './triggers/http.ts';
import { EXTRA_TRIGGERS } from './triggers/index-extra.ts';
import { logTrigger } from './triggers/log.ts';
import type { TriggerRunner } from './triggers/trigger.ts';

export const RUNNERS: Readonly<Record<string, () => TriggerRunner>> = {
  log: () => logTrigger() as TriggerRunner,
  http: () => httpTrigger() as TriggerRunner,
  ...EXTRA_TRIGGERS,
};
