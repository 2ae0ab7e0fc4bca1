// Event sources that watch something rather than receive messages: schedules (calendar), files
// (local, SFTP, HDFS), Kubernetes objects (resource), MinIO/S3 buckets, and custom gRPC servers
// (generic).
import { z } from 'zod';
import { checkCron, checkTimeZone, parseExclusionDate } from '../checks.ts';
import { EventPersistence, S3Artifact, Selector } from '../common.ts';
import { ConfigMapKeySelector, SecretKeySelector, secretRef } from '../k8s.ts';
import { bool, obj, POSITIVE_DURATION, positiveDuration, str, strList } from '../kit.ts';
import { parseDurationMs } from '../stream-config.ts';
import {
  celHas,
  crossRules,
  filter,
  fsEventType,
  jsonBody,
  metadata,
  WatchPathConfig,
  watchPathRules,
  watchPathShape,
} from './parts.ts';

// ---------------------------------------------------------------------------------- calendar --

/**
 * 5 fields (minute first), 6 fields (seconds first), or a descriptor such as "@hourly" /
 * "@every 10s" (a positive duration), optionally after robfig/cron's "TZ=<zone> " or
 * "CRON_TZ=<zone> " prefix.
 */
export const CRON_SCHEDULE = new RegExp(
  `^((CRON_)?TZ=\\S* +)?(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every\\s+${POSITIVE_DURATION.source.slice(1, -1)}|(\\S+\\s+){4,5}\\S+)$`,
);

export const CalendarEventSource = crossRules(
  obj('Emits an event on a schedule or at a fixed interval.', {
    schedule: z
      .string()
      .regex(CRON_SCHEDULE, {
        message:
          'must be a cron expression (5 fields, or 6 with seconds first) or a descriptor such as "@hourly" or "@every 10s", optionally after "TZ=<zone> "',
      })
      .optional()
      .describe(
        'Cron expression, e.g. "30 * * * *" (5 fields, or 6 with seconds first), or a descriptor such as "@daily" or "@every 1m"; ' +
          'a "TZ=<zone> " or "CRON_TZ=<zone> " prefix (robfig/cron) gives the schedule its own time zone. ' +
          'Takes precedence over interval when both are set.',
      ),
    interval: positiveDuration(
      'Fixed time between events, e.g. "10s" or "1h" (more than zero). Use this or schedule.',
    ),
    exclusionDates: strList('Dates (RFC 3339 timestamps; only the day counts) on which no event is emitted.'),
    timezone: str(
      'Time zone the schedule is read in, as Go names it: an IANA name such as "Europe/Paris" (case-sensitive), "UTC" (the default) or "Local" (the pod\'s zone: UTC unless TZ is set).',
    ),
    metadata: metadata(),
    persistence: EventPersistence.optional().describe(
      'Remember the last emitted time in a ConfigMap, so a restart can catch up on missed times.',
    ),
    filter: filter(),
  }),
  [
    {
      cel: `${celHas('schedule')} || ${celHas('interval')}`,
      holds: (v) => v.schedule !== undefined || v.interval !== undefined,
      message: 'set schedule or interval',
      field: 'schedule',
      reason: 'FieldValueRequired',
    },
  ],
).superRefine((v, ctx) => {
  // What the calendar source would refuse when it starts (upstream refuses it at validation).
  const bad = (path: Array<string | number>, message: string | undefined) => {
    if (message) ctx.addIssue({ code: 'custom', path, message });
  };
  if (v.schedule) bad(['schedule'], checkCron(v.schedule, true));
  if (v.timezone) bad(['timezone'], checkTimeZone(v.timezone));
  const ms = v.interval === undefined ? undefined : parseDurationMs(v.interval);
  if (ms !== undefined && ms > 0 && ms < 1)
    bad(['interval'], `"${v.interval}" is shorter than the shortest interval (1ms)`);
  v.exclusionDates?.forEach((d, i) => {
    try {
      parseExclusionDate(d);
    } catch (err) {
      bad(['exclusionDates', i], (err as Error).message);
    }
  });
});
export type CalendarEventSource = z.infer<typeof CalendarEventSource>;

// ------------------------------------------------------------------------------------- files --

export const FileEventSource = obj(
  'Watches a directory of the pod filesystem (e.g. a mounted volume) for file changes.',
  {
    eventType: fsEventType('File operation that produces an event: CREATE, WRITE, REMOVE, RENAME or CHMOD.'),
    watchPathConfig: WatchPathConfig.describe('Which files are watched.'),
    polling: bool(
      'Poll the directory instead of relying on filesystem notifications (needed on some network volumes).',
    ),
    metadata: metadata(),
    filter: filter(),
  },
);
export type FileEventSource = z.infer<typeof FileEventSource>;

export const SFTPEventSource = obj('Polls a directory on an SFTP server for file changes.', {
  eventType: fsEventType('File operation that produces an event: CREATE or REMOVE.'),
  watchPathConfig: WatchPathConfig.describe('Which files are watched.'),
  address: SecretKeySelector.describe('Secret key holding the server address, host:port.'),
  username: secretRef('Secret key holding the user name.'),
  password: secretRef('Secret key holding the password. Use this or sshKeySecret.'),
  sshKeySecret: secretRef('Secret key holding an SSH private key. Use this or password.'),
  metadata: metadata(),
  filter: filter(),
  pollIntervalDuration: positiveDuration('Time between two listings of the directory. Defaults to 10s.'),
});
export type SFTPEventSource = z.infer<typeof SFTPEventSource>;

const has = (v: Record<string, unknown>, k: string) => v[k] !== undefined;

export const HDFSEventSource = crossRules(
  obj('Polls a directory on HDFS for file changes.', {
    ...watchPathShape,
    type: fsEventType('File operation that produces an event: CREATE, WRITE, REMOVE, RENAME or CHMOD.'),
    checkInterval: positiveDuration('Time between two listings of the directory. Defaults to 1m.'),
    addresses: z.array(z.string().min(1)).min(1).describe('Name node addresses, host:port.'),
    hdfsUser: str('HDFS user to act as, when Kerberos is not used.'),
    krbCCacheSecret: secretRef(
      'Secret key holding a Kerberos credentials cache. Use this or krbKeytabSecret.',
    ),
    krbKeytabSecret: secretRef('Secret key holding a Kerberos keytab. Use this or krbCCacheSecret.'),
    krbUsername: str('Kerberos user name; needed with krbKeytabSecret.'),
    krbRealm: str('Kerberos realm; needed with krbKeytabSecret.'),
    krbConfigConfigMap: ConfigMapKeySelector.optional().describe(
      'ConfigMap key holding the Kerberos configuration (krb5.conf); needed with Kerberos.',
    ),
    krbServicePrincipalName: str('Kerberos principal of the HDFS service; needed with Kerberos.'),
    metadata: metadata(),
    filter: filter(),
  }),
  [
    ...watchPathRules(),
    {
      cel: `${celHas('hdfsUser')} || ${celHas('krbCCacheSecret')} || ${celHas('krbKeytabSecret')}`,
      holds: (v) => has(v, 'hdfsUser') || has(v, 'krbCCacheSecret') || has(v, 'krbKeytabSecret'),
      message: 'set hdfsUser, krbCCacheSecret or krbKeytabSecret',
      field: 'hdfsUser',
      reason: 'FieldValueRequired',
    },
    {
      cel: `!${celHas('krbKeytabSecret')} || (${['krbServicePrincipalName', 'krbConfigConfigMap', 'krbUsername', 'krbRealm'].map(celHas).join(' && ')})`,
      holds: (v) =>
        !has(v, 'krbKeytabSecret') ||
        ['krbServicePrincipalName', 'krbConfigConfigMap', 'krbUsername', 'krbRealm'].every((k) => has(v, k)),
      message: 'krbKeytabSecret needs krbServicePrincipalName, krbConfigConfigMap, krbUsername and krbRealm',
      field: 'krbKeytabSecret',
    },
    {
      cel: `!${celHas('krbCCacheSecret')} || (${celHas('krbServicePrincipalName')} && ${celHas('krbConfigConfigMap')})`,
      holds: (v) =>
        !has(v, 'krbCCacheSecret') || (has(v, 'krbServicePrincipalName') && has(v, 'krbConfigConfigMap')),
      message: 'krbCCacheSecret needs krbServicePrincipalName and krbConfigConfigMap',
      field: 'krbCCacheSecret',
    },
  ],
);
export type HDFSEventSource = z.infer<typeof HDFSEventSource>;

// ---------------------------------------------------------------------------------- resource --

export const ResourceFilter = obj('Narrows which objects are watched and reported.', {
  prefix: str('Only objects whose name starts with this text.'),
  labels: z
    .array(Selector)
    .optional()
    .describe('Label conditions, all of which must hold (passed to the API server as a label selector).'),
  fields: z
    .array(Selector)
    .optional()
    .describe('Field conditions such as metadata.name == x, all of which must hold (a field selector).'),
  createdBy: str('Only objects created before this time (RFC 3339, e.g. "2024-01-31T12:00:00Z").'),
  afterStart: bool('Only objects created after this event source started.'),
});

export const ResourceEventSource = obj('Watches Kubernetes objects of one kind and emits their changes.', {
  namespace: str(
    'Namespace to watch; all namespaces when empty (the service account then needs cluster-wide rights).',
  ),
  filter: ResourceFilter.optional().describe('Narrows which objects are reported.'),
  group: str(
    'API group of the kind, e.g. "apps" or "argoproj.io"; empty for the core group (pods, configmaps).',
  ),
  version: z.string().min(1).describe('API version within the group, e.g. "v1".'),
  resource: z.string().min(1).describe('Plural resource name, e.g. "deployments" or "pods".'),
  eventTypes: z
    .array(z.enum(['ADD', 'UPDATE', 'DELETE']))
    .min(1)
    .describe('Changes that produce events: ADD, UPDATE and/or DELETE.'),
  metadata: metadata(),
});
export type ResourceEventSource = z.infer<typeof ResourceEventSource>;

// ------------------------------------------------------------------------------------- minio --

/** A bucket watched for notifications: as the shared S3Artifact, but credentials are needed here. */
export const MinioEventSource = S3Artifact.safeExtend({
  accessKey: SecretKeySelector.describe('Secret key holding the access key id.'),
  secretKey: SecretKeySelector.describe('Secret key holding the secret access key.'),
}).describe('Listens for bucket notifications from MinIO (or another S3 service with the same API).');
export type MinioEventSource = z.infer<typeof MinioEventSource>;

// ----------------------------------------------------------------------------------- generic --

export const GenericEventSource = obj(
  'Receives events from a custom event source server that speaks the upstream generic gRPC protocol.',
  {
    url: z.string().min(1).describe('Address of the gRPC server, host:port.'),
    config: str('Configuration handed to the server as is (often YAML text).'),
    insecure: bool('Connect without TLS.'),
    jsonBody: jsonBody(),
    metadata: metadata(),
    authSecret: secretRef('Secret key holding a bearer token sent to the server.'),
    filter: filter(),
  },
);
export type GenericEventSource = z.infer<typeof GenericEventSource>;
