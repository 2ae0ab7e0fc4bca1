// The pure parts of what the command line reads: standard input read to its end however late it
// is written, log levels checked against pino's list, network errors that name their host, and
// a kubeconfig's credential plugin named the same way by every subcommand when it fails.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CoreV1Api } from '@kubernetes/client-node';
import { connect } from '@nats-io/transport-node';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { logLevel } from '../../../src/cli/args.ts';
import { natsConnectError, networkErrorText, toCliError } from '../../../src/cli/errors.ts';
import { readStdin } from '../../../src/cli/stdin.ts';
import { authPluginOf, pluginFailure } from '../../../src/kube/auth-plugin.ts';
import { loadClientKubeConfig } from '../../../src/kube/client-config.ts';
import { KubeConfigError, SimpleKubeConfig } from '../../../src/kube/config.ts';
import { LOG_LEVELS, LogLevelError } from '../../../src/observability/log-levels.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { execPluginKubeconfig } from '../../fixtures/kubeconfig.ts';

describe('readStdin', () => {
  it('waits for a writer that has not written yet, and reads to the end', async () => {
    const input = new PassThrough();
    const reading = readStdin(input, () => {});
    await new Promise((r) => setImmediate(r));
    input.write('kind: Sensor\n');
    await new Promise((r) => setImmediate(r));
    input.end('metadata: {name: x}\n');
    expect(await reading).toBe('kind: Sensor\nmetadata: {name: x}\n');
  });

  it('says how to end the input on a terminal only', async () => {
    const said: string[] = [];
    const tty = Object.assign(new PassThrough(), { isTTY: true });
    tty.end('');
    await readStdin(tty, (l) => said.push(l));
    const pipe = new PassThrough();
    pipe.end('');
    await readStdin(pipe, (l) => said.push(l));
    expect(said).toEqual(['reading manifests from standard input (end with Ctrl-D)\n']);
  });
});

describe('log levels', () => {
  it('--log-level takes pino levels only', () => {
    for (const l of LOG_LEVELS) expect(logLevel(l)).toBe(l);
    expect(() => logLevel('loud')).toThrow(InvalidArgumentError);
    expect(() => logLevel('INFO')).toThrow(`expected one of ${LOG_LEVELS.join(', ')}.`);
  });

  it('createLogger refuses a bad level with a user error naming its source', () => {
    const was = process.env.SLUICE_LOG_LEVEL;
    process.env.SLUICE_LOG_LEVEL = 'loud';
    try {
      const err = (() => {
        try {
          createLogger({ destination: new PassThrough() });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(LogLevelError);
      expect(toCliError(err)).toMatchObject({
        code: 'Usage',
        message: `SLUICE_LOG_LEVEL "loud" is not one of ${LOG_LEVELS.join(', ')}`,
      });
      // An explicit level wins over the variable.
      expect(createLogger({ level: 'warn', destination: new PassThrough() }).level).toBe('warn');
    } finally {
      if (was === undefined) delete process.env.SLUICE_LOG_LEVEL;
      else process.env.SLUICE_LOG_LEVEL = was;
    }
  });
});

describe('network errors name their host', () => {
  const errno = (code: string, extra: object) => Object.assign(new Error(code), { code, ...extra });

  it('in words, with the host or address tried', () => {
    expect(networkErrorText(errno('ENOTFOUND', { hostname: 'notaurl', syscall: 'getaddrinfo' }))).toBe(
      'no such host notaurl (ENOTFOUND)',
    );
    expect(networkErrorText(errno('ECONNREFUSED', { address: '10.0.0.1', port: 6443 }))).toBe(
      'cannot reach 10.0.0.1:6443: connection refused (ECONNREFUSED)',
    );
    expect(networkErrorText(errno('EPIPE', {}))).toBeUndefined();
  });

  it('a listen address not on this machine, and a folder that cannot be made', async () => {
    const err = await new Promise<unknown>((resolve) => {
      const server = createServer();
      server.once('error', resolve);
      server.listen(0, '192.0.2.1'); // TEST-NET-1: never a local address
    });
    expect(toCliError(err)).toMatchObject({
      code: 'PortUnavailable',
      message: 'cannot listen on 192.0.2.1: no such address on this machine (check --host)',
    });
    const file = join(await mkdtemp(join(tmpdir(), 'sluice-mk-')), 'f');
    writeFileSync(file, '');
    const mk = (() => {
      try {
        mkdirSync(join(file, 'state'), { recursive: true });
      } catch (e) {
        return e;
      }
    })();
    expect(toCliError(mk)?.message).toBe(
      `cannot write ${join(file, 'state')}: a part of the path is not a folder`,
    );
  });

  it('a NATS URL that does not parse, or a host that does not resolve, names the servers', async () => {
    const bad = await connect({ servers: 'http://[::1' }).catch((e: unknown) => e);
    expect(natsConnectError('http://[::1', bad)).toMatchObject({
      code: 'Usage',
      message: expect.stringMatching(/^"http:\/\/\[::1" is not a valid NATS server URL/),
    });
    const dns = errno('ENOTFOUND', { hostname: 'notaurl' });
    expect(natsConnectError('notaurl', dns)).toMatchObject({
      code: 'BusUnreachable',
      message: 'cannot use the NATS server notaurl: no such host notaurl (ENOTFOUND)',
    });
    const other = new TypeError('a bug');
    expect(natsConnectError('nats://x', other)).toBe(other);
  });
});

describe('kubeconfig credential plugins', () => {
  it('are named the same way from raw YAML and from client-node users', () => {
    expect(authPluginOf({ exec: { command: 'aws' } })).toBe('the exec plugin "aws"');
    expect(authPluginOf({ 'auth-provider': { name: 'gcp' } })).toBe('the auth-provider plugin "gcp"');
    expect(authPluginOf({ authProvider: { name: 'oidc' } })).toBe('the auth-provider plugin "oidc"');
    expect(authPluginOf({})).toBeUndefined();
  });

  it('a failed run is said in words', () => {
    const spawnErr = Object.assign(new Error('spawn foo ENOENT'), { code: 'ENOENT', syscall: 'spawn foo' });
    expect(pluginFailure(spawnErr)).toBe('is not installed: not found on PATH');
    expect(pluginFailure(new Error('\nerror: token expired\nmore'))).toBe('failed: error: token expired');
    expect(pluginFailure(new Error(''))).toBe('failed and wrote nothing on stderr');
    expect(pluginFailure(new SyntaxError('Unexpected token'))).toMatch(/^printed no ExecCredential JSON/);
  });

  it('sluice dlq/dev (client-node) and sluice controller name file, user and plugin alike', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-plugin-'));
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, execPluginKubeconfig('sluice-no-such-plugin'));
    const prefix = `kubeconfig ${file}: user "dev" uses the exec plugin "sluice-no-such-plugin", which`;
    const api = loadClientKubeConfig(file).makeApiClient(CoreV1Api);
    const err = await api.listNamespace().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeConfigError);
    expect((err as Error).message).toBe(`${prefix} is not installed: not found on PATH`);
    expect(() => SimpleKubeConfig.loadFile(file)).toThrow(`${prefix} sluice controller does not run`);
  });
});
