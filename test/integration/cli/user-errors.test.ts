// Every user mistake on the command line ends the same way, whatever the subcommand: exit
// status 2, one clear line on stderr, no stack trace (bin/sluice as a subprocess, against the
// real nats-server and kube-apiserver of the test harness where a server is involved).
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../harness/ports.ts';
import { kubeconfigPath, kubeMissing, natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { bareEnv, expectUserError, SENSOR, scratch, sluice } from './run.ts';

const { dir, write } = scratch('sluice-usererr-');

let taken: Server;
let takenPort: number;
beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '0.0.0.0', r));
  takenPort = (taken.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => taken.close(() => r())));

describe('command-line mistakes (no server needed)', () => {
  it.each([
    [['frob'], '', /^sluice: unknown command 'frob' \(see sluice --help\)$/],
    [['lint', '--bogus', 'x'], 'lint', /unknown option '--bogus' \(see sluice lint --help\)$/],
    [['dlq', 'list', '--bogus'], 'dlq', /unknown option '--bogus'/],
    [['dev', '--bogus', '-f', 'x'], 'dev', /unknown option '--bogus'/],
    [['dev'], 'dev', /required option '-f, --file <path\.\.\.>' not specified/],
    [['controller', '--metrics-port', 'abc'], 'controller', /'abc' is invalid\. expected a port number/],
    [['controller', '--workers', '0'], 'controller', /expected a whole number greater than 0/],
    [['dlq', 'frob'], 'dlq', /unknown action "frob": use list, show, replay or purge/],
    [['dlq', 'show', 'abc'], 'dlq', /show needs a sequence number/],
    [['dlq', 'list', '--since', 'last-tuesday'], 'dlq', /"last-tuesday" is neither a duration/],
    [['dlq', 'replay'], 'dlq', /replay needs --sensor NAME/],
    [['dlq', 'purge'], 'dlq', /purge with no filter removes every dead letter of the bus: add --all/],
    [
      ['controller', '--kubeconfig', '/nonexistent/kc'],
      'controller',
      /cannot read kubeconfig \/nonexistent\/kc: ENOENT/,
    ],
    [['controller'], 'controller', /cannot read kubeconfig .*\.kube\/config/],
    [
      ['eventsource'],
      'eventsource',
      /SLUICE_OBJECT is not set; sluice eventsource is started by the controller/,
    ],
    [['sensor'], 'sensor', /SLUICE_OBJECT is not set/],
    [
      ['dev', '-f', '/nonexistent/manifests'],
      'dev',
      /cannot read \/nonexistent\/manifests: no such file or folder/,
    ],
    [
      ['dlq', 'replay', '--sensor', 'orders', '-f', '/nonexistent/x.yaml'],
      'dlq',
      /cannot read \/nonexistent\/x\.yaml/,
    ],
    [
      ['dlq', 'replay', '--sensor', 'orders'],
      'dlq',
      /no kubeconfig: pass --kubeconfig, set KUBECONFIG or create ~\/\.kube\/config, or give the Sensor manifest with -f FILE\|DIR/,
    ],
    [
      ['dlq', 'list', '--nkey', '/nonexistent/admin.nkey'],
      'dlq',
      /cannot read NKey seed file \/nonexistent\/admin\.nkey: ENOENT/,
    ],
  ])('sluice %j', async (args, command, message) => {
    expectUserError(await sluice(args), command, message);
  });

  it('-f given a folder without the Sensor, or a file that is not a manifest, names what is wrong', async () => {
    write('nosensor/es.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n');
    expectUserError(
      await sluice(['dlq', 'replay', '--sensor', 'orders', '-f', join(dir, 'nosensor')]),
      'dlq',
      /nosensor has no Sensor default\/orders$/,
    );
    mkdirSync(join(dir, 'empty'), { recursive: true });
    expectUserError(
      await sluice(['dlq', 'replay', '--sensor', 'orders', '-f', join(dir, 'empty')]),
      'dlq',
      /empty holds no \.yaml, \.yml or \.json file/,
    );
    const bad = write('bad.yaml', 'kind: Sensor\nmetadata: {name: orders\n  spec: [\n');
    expectUserError(
      await sluice(['dlq', 'replay', '--sensor', 'orders', '-f', bad]),
      'dlq',
      /bad\.yaml has no Sensor default\/orders \(\d problem\(s\), first: .*bad\.yaml: YAML error at line 2/,
    );
    const invalid = write('invalid.yaml', SENSOR.replace('triggers:', 'triggerz:'));
    expectUserError(
      await sluice(['dlq', 'replay', '--sensor', 'orders', '-f', invalid]),
      'dlq',
      /the Sensor orders is not valid: .*invalid\.yaml: Sensor\/orders/,
    );
  });

  it('sluice lint - reads standard input', async () => {
    const good = await sluice(['lint', '-'], { input: SENSOR });
    expect(good).toMatchObject({ code: 0, stdout: '' });
    expect(good.stderr).toMatch(/^1 file\(s\), 1 valid object\(s\), 0 problem\(s\)/);
    const bad = await sluice(['lint', '-'], { input: SENSOR.replace('eventSourceName', 'eventSourceNmae') });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /^<stdin>: Sensor\/orders: spec\.dependencies\[0\]\.eventSourceNmae: unknown field \(did you mean "eventSourceName"\?\)$/m,
    );
  });
});

describe.skipIf(natsMissing())(`mistakes involving the bus${skipNote(natsMissing())}`, () => {
  it('an unreachable NATS server is one line', async () => {
    const port = await freePort();
    expectUserError(
      await sluice(['dlq', 'list', '--nats-url', `nats://127.0.0.1:${port}`]),
      'dlq',
      new RegExp(`cannot use the NATS server: connection refused \\(127\\.0\\.0\\.1:${port}\\)`),
    );
  });

  it('a Sensor whose dependency does not compile is one line naming it', async () => {
    const file = write(
      'bad-regex.yaml',
      SENSOR.replace(
        '[{name: d, eventSourceName: hooks, eventName: orders}]',
        "[{name: d, eventSourceName: hooks, eventName: orders, filters: {data: [{path: a, type: string, value: ['(']}]}}]",
      ),
    );
    expectUserError(
      await sluice(['dlq', 'replay', '--sensor', 'orders', '-f', file, '--nats-url', natsUrl()]),
      'dlq',
      /^sluice dlq: Sensor orders: dependency d: /,
    );
  });

  it('a bus with no dead-letter stream is one line naming the stream', async () => {
    expectUserError(
      await sluice(['dlq', 'list', '--nats-url', natsUrl(), '-n', 'no-such-ns', '--bus', 'nope']),
      'dlq',
      /no dead-letter stream .* for EventBus no-such-ns\/nope \(check -n and --bus\)/,
    );
  });

  it('sluice dev: a taken metrics port, and manifests with nothing valid', async () => {
    const folder = join(dir, 'dev-ok');
    write('dev-ok/sensor.yaml', SENSOR);
    const state = join(dir, 'state');
    const common = ['--nats-url', natsUrl(), '--state-dir', state, '--no-watch'];
    expectUserError(
      await sluice(['dev', '-f', folder, ...common, '--metrics-port', String(takenPort)]),
      'dev',
      new RegExp(`port ${takenPort} is already in use; pick another one`),
    );
    const invalid = write('dev-bad/sensor.yaml', SENSOR.replace('triggers:', 'triggerz:'));
    const r = await sluice(['dev', '-f', invalid, ...common, '--metrics-port', '0']);
    expectUserError(
      r,
      'dev',
      /no valid EventBus, EventSource or Sensor in .*sensor\.yaml \(\d problem\(s\) above\)/,
    );
    expect(r.stdout).toMatch(/^problem: .*sensor\.yaml: Sensor\/orders: /m);
  });
});

describe.skipIf(kubeMissing())(`mistakes involving the cluster${skipNote(kubeMissing())}`, () => {
  it('sluice controller: a taken metrics port is one line', async () => {
    const r = await sluice(
      [
        'controller',
        '--kubeconfig',
        kubeconfigPath()!,
        '--metrics-port',
        String(takenPort),
        '--no-leader-elect',
      ],
      { env: bareEnv() },
    );
    expectUserError(r, 'controller', new RegExp(`port ${takenPort} is already in use`));
  });

  it('sluice dlq replay: a Sensor not in the cluster is one line', async () => {
    const r = await sluice([
      'dlq',
      'replay',
      '--sensor',
      'nope',
      '-n',
      'default',
      '--kubeconfig',
      kubeconfigPath()!,
    ]);
    expectUserError(
      r,
      'dlq',
      /no Sensor default\/nope in the cluster of context sluice-test \(give its manifest with -f\)/,
    );
  });
});
