// Trigger runners beyond log and http, by template key, in the shape of RUNNERS (runners.ts):
// each entry makes a fresh runner (the runtime keeps one per type and Sensor and closes it).
import { argoWorkflowTrigger } from './argo-workflow.ts';
import { emailTrigger } from './email.ts';
import { k8sTrigger } from './k8s.ts';
import { lazyRunner } from './lazy.ts';
import { natsTrigger } from './nats.ts';
import { slackTrigger } from './slack.ts';
import type { TriggerRunner } from './trigger.ts';

export const EXTRA_TRIGGERS: Readonly<Record<string, () => TriggerRunner>> = {
  k8s: () => k8sTrigger() as TriggerRunner,
  argoWorkflow: () => argoWorkflowTrigger() as TriggerRunner,
  nats: () => natsTrigger() as TriggerRunner,
  slack: () => slackTrigger() as TriggerRunner,
  email: () => emailTrigger() as TriggerRunner,
  // Loaded on first use (lazy.ts): their client libraries are large.
  kafka: () =>
    lazyRunner('kafka', async () => (await import('./kafka.ts')).kafkaTrigger as () => TriggerRunner),
  custom: () =>
    lazyRunner('custom', async () => (await import('./custom.ts')).customTrigger as () => TriggerRunner),
  awsLambda: () =>
    lazyRunner(
      'awsLambda',
      async () => (await import('./aws-lambda.ts')).awsLambdaTrigger as () => TriggerRunner,
    ),
};
