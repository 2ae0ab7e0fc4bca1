#!/usr/bin/env node
// sluice: one binary, several roles (DESIGN.md §2). Each role lives in its own module and is
// loaded only when invoked, so `sluice lint` does not pay for the NATS or Kubernetes clients.
import { Command, CommanderError } from 'commander';
import { LOG_LEVELS } from '../observability/log-levels.ts';
import { VERSION } from '../version.ts';
import { count, logLevel, podGrants, port } from './args.ts';
import { exitOnError, USER_ERROR_EXIT } from './errors.ts';

/**
 * Runs a long-running role under the process guard: once started it keeps going past an
 * unexpected error (logged and counted; see guard.ts), but a role that fails to start exits (2
 * for a user error such as a missing kubeconfig or a port in use, 1 for a bug) so its pod
 * restarts instead of idling.
 */
async function runRole(name: string, start: () => Promise<void>): Promise<void> {
  (await import('./guard.ts')).installProcessGuard();
  await exitOnError(name, start);
}

const program = new Command();
program
  .name('sluice')
  .description('Argo-Events-compatible event automation on NATS JetStream')
  .version(VERSION, '-v, --version')
  .enablePositionalOptions();

program
  .command('controller')
  .description('run the operator: watch EventBus/EventSource/Sensor and reconcile them')
  .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster or $KUBECONFIG)')
  .option('--namespaced', 'watch only the namespace the controller runs in')
  .option('--managed-namespace <ns>', 'watch only this namespace')
  .option('--no-leader-elect', 'run without leader election (only for a single replica)')
  .option('--leader-elect-namespace <ns>', 'namespace of the leader-election Lease (default: own namespace)')
  .option('--lease-duration <seconds>', 'how long a leader lease lasts without renewal', count, '15')
  .option('--renew-deadline <seconds>', 'a leader that could not renew for this long steps down', count, '10')
  .option('--retry-period <seconds>', 'time between lease acquire/renew attempts', count, '2')
  .option('--metrics-port <port>', 'port for /metrics, /healthz and /readyz', port, '7777')
  .option(
    '--image <image>',
    'sluice image for EventSource/Sensor pods (default: $SLUICE_IMAGE or sluice:<version>)',
  )
  .option(
    '--nats-image <image>',
    'nats-server image for managed buses with version "latest"',
    'nats:2.12-alpine',
  )
  .option(
    '--nats-reloader-image <image>',
    'config reloader sidecar of managed buses, taking nats-server-config-reloader flags (default: the sluice image running `sluice nats-reloader`)',
  )
  .option('--workers <n>', 'reconcile workers per kind', count, '4')
  .option(
    '--allow-pod-settings <list>',
    'pod settings EventSource/Sensor/EventBus authors may use, comma-separated: privileged, hostPath, volumes, root, runtime (default: $SLUICE_ALLOW_POD_SETTINGS or none; see README, Security)',
    podGrants,
  )
  .option(
    '--log-level <level>',
    `log level (${LOG_LEVELS.join(', ')}; default: $SLUICE_LOG_LEVEL or info)`,
    logLevel,
  )
  .action(async (flags) => {
    await runRole('controller', async () => {
      const { runController } = await import('./controller.ts');
      await runController(flags);
    });
  });

program
  .command('eventsource')
  .description("run one EventSource's adapters and publish its events to the bus (started by the controller)")
  .option('--metrics-port <port>', 'port for /metrics, /healthz and /readyz', port, '7777')
  .option(
    '--log-level <level>',
    `log level (${LOG_LEVELS.join(', ')}; default: $SLUICE_LOG_LEVEL or info)`,
    logLevel,
  )
  .action(async (flags) => {
    await runRole('eventsource', async () => {
      const { runEventSource } = await import('./eventsource.ts');
      await runEventSource(flags);
    });
  });

program
  .command('sensor')
  .description('run one Sensor: match dependencies and fire its triggers (started by the controller)')
  .option('--metrics-port <port>', 'port for /metrics, /healthz and /readyz', port, '7777')
  .option(
    '--log-level <level>',
    `log level (${LOG_LEVELS.join(', ')}; default: $SLUICE_LOG_LEVEL or info)`,
    logLevel,
  )
  .action(async (flags) => {
    await runRole('sensor', async () => {
      const { runSensor } = await import('./sensor.ts');
      await runSensor(flags);
    });
  });

program
  .command('nats-reloader')
  .description(
    "config reloader sidecar of a managed bus's server pods: signals nats-server when its config or certificates change (started by the controller; bin/nats-reloader)",
  )
  .argument('[flags...]', '-pid FILE -config FILE [-config FILE...] [-signal HUP] [-interval SECONDS]')
  .helpOption(false)
  .allowUnknownOption()
  .action(async (args: string[]) => {
    // bin/sluice runs the shell script directly; this is for `node src/cli/main.ts nats-reloader`.
    const { spawnSync } = await import('node:child_process');
    const script = new URL('../../bin/nats-reloader', import.meta.url).pathname;
    process.exitCode = spawnSync(script, args, { stdio: 'inherit' }).status ?? 1;
  });

program
  .command('dlq')
  .description('list, show, replay or purge dead letters of an EventBus')
  .argument('<action>', 'list | show SEQ | replay | purge')
  .argument('[args...]', 'for show: the sequence number')
  .option(
    '--nats-url <url>',
    'NATS server(s) of the EventBus (default: $NATS_URL, $SLUICE_NATS_URL, the NATS context, nats://127.0.0.1:4222); nats://TOKEN@host and nats://USER:PASS@host work',
  )
  .option(
    '--context <name>',
    'nats CLI context to read the URL, credentials and TLS from (default: $NATS_CONTEXT or the selected one)',
  )
  .option('--creds <file>', 'NATS credentials file (default: $NATS_CREDS)')
  .option(
    '--nkey <file>',
    'file with an NKey seed, e.g. the admin.nkey of a managed bus (default: $NATS_NKEY)',
  )
  .option('--user <name>', 'user name, or NAME:PASSWORD (default: $NATS_USER)')
  .option('--password <password>', 'password for --user (default: $NATS_PASSWORD)')
  .option('--token <token>', 'authorization token (default: $NATS_TOKEN)')
  .option(
    '--tlsca <file>',
    'CA to verify the server with, e.g. the ca.crt of a managed bus (default: $NATS_CA)',
  )
  .option('--tlscert <file>', 'client certificate (default: $NATS_CERT)')
  .option('--tlskey <file>', 'client key (default: $NATS_KEY)')
  .option('-n, --namespace <ns>', 'namespace of the EventBus and Sensor', 'default')
  .option('--bus <name>', 'EventBus name', 'default')
  .option('--sensor <name>', 'only dead letters of this Sensor (required for replay)')
  .option('--trigger <name>', 'only dead letters of this trigger')
  .option('--since <when>', 'only dead letters from this time on (RFC 3339, or a duration ago such as 2h)')
  .option('--until <when>', 'only dead letters before this time')
  .option(
    '-f, --file <path>',
    'replay: read the Sensor (and the Secrets and ConfigMaps it uses) from this manifest file or folder ("-": standard input) instead of the cluster',
  )
  .option('--kubeconfig <path>', 'kubeconfig for reading the Sensor, Secrets and ConfigMaps')
  .option('--json', 'list: print JSON')
  .option('--all', 'purge: select every dead letter of the bus (no filter)')
  .option('-y, --yes', 'purge: do not ask for confirmation (needed when not on a terminal)')
  .option('--dry-run', 'purge: print what would be purged, remove nothing')
  .action(async (action: string, args: string[], flags) => {
    await exitOnError('dlq', async () => {
      const { runDlq } = await import('./dlq.ts');
      process.exitCode = await runDlq(action, args, flags);
    });
  });

program
  .command('dev')
  .description('run EventBus/EventSource/Sensor manifests locally, with no cluster (sluice dev -f DIR)')
  .requiredOption('-f, --file <path...>', 'manifest files or folders; "-" reads standard input (once)')
  .option('--nats-url <url>', 'use this NATS server instead of starting one')
  .option('--state-dir <dir>', 'where the local nats-server keeps its store', '.sluice')
  .option('--metrics-port <port>', 'port for /metrics (0 = any free port)', port, '7777')
  .option('--host <addr>', 'bind address for webhook servers and the sink', '127.0.0.1')
  .option('--sink <port>', 'also start a demo HTTP sink on this port', port)
  .option('--strict', 'exit (status 2) when any object does not start, instead of running the rest')
  .option('--no-watch', 'do not reload manifests when they change')
  .option(
    '--log-level <level>',
    `log level (${LOG_LEVELS.join(', ')}; default: $SLUICE_LOG_LEVEL or info)`,
    logLevel,
  )
  .action(async (flags) => {
    await runRole('dev', async () => {
      const { runDev } = await import('./dev.ts');
      await runDev(flags);
    });
  });

program
  .command('lint')
  .description('validate manifests offline against the sluice schemas')
  .argument('<paths...>', 'manifest files or folders (YAML/JSON, multi-document); "-" reads standard input')
  .option('-q, --quiet', 'print problems only, no summary line')
  .option(
    '--allow-pod-settings <list>',
    'check pod settings as a controller given this flag would (default: $SLUICE_ALLOW_POD_SETTINGS or none)',
    podGrants,
  )
  .action(async (paths: string[], opts: { quiet?: boolean; allowPodSettings?: string }) => {
    await exitOnError('lint', async () => {
      const { runLint } = await import('./lint.ts');
      process.exitCode = await runLint(paths, opts);
    });
  });

// A command-line mistake is one line naming the subcommand, with where to read more, and exit 2
// (commander alone prints the whole help after it and exits 1).
let parseError: { command: string; text: string } | undefined;
for (const c of [program, ...program.commands]) {
  const command = c === program ? '' : ` ${c.name()}`;
  c.exitOverride().configureOutput({
    outputError: (text) => {
      parseError = {
        command,
        text: text
          .trim()
          .replace(/^error: /, '')
          .replace(/\s*\n\s*/g, ' '),
      };
    },
  });
}
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  if (err.exitCode !== 0 && parseError) {
    const { command, text } = parseError;
    process.stderr.write(`sluice${command}: ${text} (see sluice${command} --help)\n`);
  }
  process.exitCode = err.exitCode === 0 ? 0 : USER_ERROR_EXIT;
}
