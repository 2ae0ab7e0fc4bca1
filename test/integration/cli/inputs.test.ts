// What the command line reads, and how it says so when it cannot: standard input read to its end
// however slowly it is written ("-" for `lint`, `dev -f`, `dlq replay -f`), missing files as user
// errors (exit 2) everywhere, log levels checked by every role, the NATS server named when it
// cannot be reached, a kubeconfig's credential plugin named when it fails, and the managed bus's
// reloader sidecar refusing paths that cannot work. All through bin/sluice as a subprocess.
import { chmodSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execPluginKubeconfig } from '../../fixtures/kubeconfig.ts';
import { freePort } from '../../harness/ports.ts';
import { ManagedProcess, waitFor } from '../../harness/proc.ts';
import { findTool } from '../../harness/tools.ts';
import { bareEnv, bin, expectUserError, SENSOR, scratch, shell, sluice } from './run.ts';

const root = new URL('../../..', import.meta.url).pathname;
const { dir, write } = scratch('sluice-inputs-');
const LEVELS = 'trace, debug, info, warn, error, fatal, silent';

describe('standard input, read to its end', () => {
  it('sluice lint - waits for a writer that is slow to start (was: <stdin>: cannot read: EAGAIN)', async () => {
    const file = write('slow/sensor.yaml', SENSOR);
    // The writer starts after sluice is reading: the pipe is empty, not closed, at first.
    const r = await shell(`(sleep 1; cat '${file}') | "$SLUICE" lint -`);
    expect(r.stderr).toMatch(/^1 file\(s\), 1 valid object\(s\), 0 problem\(s\), 0 warning\(s\)$/m);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '' });
    const bad = await shell(`(sleep 1; sed s/eventSourceName/eventSourceNmae/ '${file}') | "$SLUICE" lint -`);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /^<stdin>: Sensor\/orders: spec\.dependencies\[0\]\.eventSourceNmae: unknown field/m,
    );
  });

  it.skipIf(findTool('helm').missing)(
    'helm template charts/sluice | sluice lint - (the README example)',
    async () => {
      const helm = findTool('helm').path!;
      const r = await shell(`'${helm}' template sluice '${join(root, 'charts/sluice')}' | "$SLUICE" lint -`);
      expect(r.stderr).not.toMatch(/cannot read|EAGAIN/);
      expect(r.stderr).toMatch(/^1 file\(s\), \d+ valid object\(s\), 0 problem\(s\)/m);
      expect(r.code).toBe(0);
    },
  );

  it('sluice dev -f - reads the manifests from standard input and names it in problems', async () => {
    const r = await sluice(['dev', '-f', '-', '--no-watch', '--metrics-port', '0'], {
      input: SENSOR.replace('triggers:', 'triggerz:'),
    });
    expectUserError(
      r,
      'dev',
      /no valid EventBus, EventSource or Sensor in <stdin> \(\d problem\(s\) above\)$/,
    );
    expect(r.stdout).toMatch(/^problem: <stdin>: Sensor\/orders: /m);
  });

  it('sluice dlq replay -f - reads the Sensor from standard input', async () => {
    const missing = await sluice(['dlq', 'replay', '--sensor', 'other', '-f', '-'], { input: SENSOR });
    expectUserError(missing, 'dlq', /^sluice dlq: <stdin> has no Sensor default\/other$/);
    // The Sensor was found on stdin: the replay goes on to the bus (none here).
    const port = await freePort();
    const found = await sluice(
      ['dlq', 'replay', '--sensor', 'orders', '-f', '-', '--nats-url', `nats://127.0.0.1:${port}`],
      { input: SENSOR },
    );
    expectUserError(found, 'dlq', /cannot use the NATS server: connection refused/);
  });
});

describe('files that do not exist are user mistakes (exit 2)', () => {
  it('sluice lint: a path given that does not exist is one line, nothing checked', async () => {
    expectUserError(
      await sluice(['lint', '/nonexistent']),
      'lint',
      /^sluice lint: cannot read \/nonexistent: no such file or folder$/,
    );
    const good = write('lint-good/sensor.yaml', SENSOR);
    const r = await sluice(['lint', good, join(dir, 'typo.yaml')]);
    expectUserError(r, 'lint', /cannot read .*typo\.yaml: no such file or folder$/);
    expect(r.stdout).toBe('');
  });

  it('sluice lint: a file in a folder that cannot be read is named; the rest is checked; exit 2', async () => {
    write('lint-dir/a.yaml', SENSOR);
    symlinkSync(join(dir, 'gone.yaml'), join(dir, 'lint-dir', 'b.yaml'));
    const r = await sluice(['lint', join(dir, 'lint-dir')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(`${join(dir, 'lint-dir', 'b.yaml')}: cannot read: no such file or folder\n`);
    expect(r.stderr).toMatch(
      /^2 file\(s\), 1 valid object\(s\), 1 problem\(s\), 1 unreadable, 0 warning\(s\)$/m,
    );
  });
});

describe('log levels', () => {
  it.each(['controller', 'eventsource', 'sensor', 'dev'])('sluice %s --log-level loud', async (role) => {
    const extra = role === 'dev' ? ['-f', '-'] : [];
    expectUserError(
      await sluice([role, ...extra, '--log-level', 'loud']),
      role,
      new RegExp(
        `argument 'loud' is invalid\\. expected one of ${LEVELS}\\. \\(see sluice ${role} --help\\)$`,
      ),
    );
  });

  it('a bad SLUICE_LOG_LEVEL is one line naming the variable', async () => {
    for (const role of ['controller', 'dev']) {
      const args = role === 'dev' ? ['dev', '-f', write('lvl/sensor.yaml', SENSOR)] : [role];
      expectUserError(
        await sluice(args, { env: bareEnv({ SLUICE_LOG_LEVEL: 'loud' }) }),
        role,
        new RegExp(`SLUICE_LOG_LEVEL "loud" is not one of ${LEVELS}$`),
      );
    }
  });
});

describe('the NATS server named when it cannot be used', () => {
  it('a host that does not resolve, and a URL that does not parse', async () => {
    expectUserError(
      await sluice(['dlq', 'list', '--nats-url', 'no-such-host.invalid']),
      'dlq',
      /cannot use the NATS server no-such-host\.invalid: (no such host|host name lookup failed for now) no-such-host\.invalid \((ENOTFOUND|EAI_AGAIN)\)$/,
    );
    expectUserError(
      await sluice(['dlq', 'list', '--nats-url', 'http://[::1']),
      'dlq',
      /"http:\/\/\[::1" is not a valid NATS server URL/,
    );
  });
});

describe('a kubeconfig whose user runs a credential plugin', () => {
  const kubeconfig = (command: string) =>
    write(`kc-${Math.random().toString(36).slice(2)}.yaml`, execPluginKubeconfig(command));

  it('sluice dlq and sluice controller name the file, user and plugin the same way', async () => {
    const kc = kubeconfig('sluice-no-such-plugin');
    const prefix = `kubeconfig ${kc}: user "dev" uses the exec plugin "sluice-no-such-plugin", which`;
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    expectUserError(
      await sluice(['dlq', 'replay', '--sensor', 'orders', '--kubeconfig', kc]),
      'dlq',
      new RegExp(`^sluice dlq: ${esc(prefix)} is not installed: not found on PATH$`),
    );
    expectUserError(
      await sluice(['controller', '--kubeconfig', kc]),
      'controller',
      new RegExp(`^sluice controller: ${esc(prefix)} sluice controller does not run; use a token`),
    );
  });

  it('a plugin that fails is named with the first line it wrote on stderr', async () => {
    const plugin = write('plugin.sh', '#!/bin/sh\necho "error: token expired; log in again" >&2\nexit 1\n');
    chmodSync(plugin, 0o755);
    expectUserError(
      await sluice(['dlq', 'replay', '--sensor', 'orders', '--kubeconfig', kubeconfig(plugin)]),
      'dlq',
      /uses the exec plugin ".*plugin\.sh", which failed: error: token expired; log in again$/,
    );
  });
});

describe('sluice nats-reloader', () => {
  const procs: ManagedProcess[] = [];
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.stop(2000)));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a -config file or a -pid folder that does not exist (exit 2, one line)', async () => {
    expectUserError(
      await sluice(['nats-reloader', '-pid', '/nonexistent', '-config', '/nonexistent']),
      'nats-reloader',
      /^sluice nats-reloader: -config \/nonexistent: no such file$/,
    );
    const conf = write('reload/nats.conf', 'port: 4222\n');
    expectUserError(
      await sluice(['nats-reloader', '-pid', '/nonexistent/run/nats.pid', '-config', conf]),
      'nats-reloader',
      /-pid \/nonexistent\/run\/nats\.pid: no folder \/nonexistent\/run /,
    );
    expectUserError(
      await sluice(['nats-reloader', '-pid', join(dir, 'x.pid'), '-config', join(dir, 'reload')]),
      'nats-reloader',
      /-config .*reload: not a readable file$/,
    );
  });

  it('started before the server, waits for its pid file (warning when it is late), then signals it', async () => {
    const conf = write('late/nats.conf', 'port: 4222\n');
    const pidFile = join(dir, 'late', 'nats.pid');
    const hups = join(dir, 'late', 'hups');
    const log = join(dir, 'late', 'reloader.log');
    const reloader = new ManagedProcess(
      'reloader',
      bin,
      ['nats-reloader', '-pid', pidFile, '-config', conf, '-interval', '0.05'],
      log,
    );
    procs.push(reloader);
    reloader.start();
    const logged = () => readFileSync(log, 'utf8');
    await waitFor('the waiting line', () =>
      logged().includes('"msg":"waiting for the server to write its pid file"'),
    );
    await waitFor('the late-pid warning', () =>
      /"level":"warn".*"msg":"no pid file after 30 intervals/.test(logged()),
    );
    // The "server": counts SIGHUPs; it writes its pid file only now.
    const server = new ManagedProcess(
      'server',
      'bash',
      ['-c', `trap 'echo hup >> ${hups}' HUP; echo $$ > ${pidFile}; while :; do sleep 0.05; done`],
      join(dir, 'late', 'server.log'),
    );
    procs.push(server);
    server.start();
    await waitFor('server found', () => logged().includes(`"msg":"server found","pid":${server.pid}`));
    writeFileSync(conf, 'port: 4223\n');
    await waitFor('the server signalled', () => {
      try {
        return readFileSync(hups, 'utf8').trim() === 'hup';
      } catch {
        return false;
      }
    });
    expect(logged()).toContain(`"msg":"files changed: server signalled to reload","pid":${server.pid}`);
    // A watched file that disappears is waited for, not signalled for.
    rmSync(conf);
    await waitFor('the unreadable warning', () => logged().includes('some cannot be read; waiting for them'));
    expect(readFileSync(hups, 'utf8').trim()).toBe('hup');
  });
});
