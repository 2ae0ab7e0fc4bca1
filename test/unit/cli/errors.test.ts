// The command line's error handling as pure logic: which errors are the user's (one line, exit 2)
// and which are bugs (stack, exit 1); numeric flag checks; the purge confirmation; the dev start
// summary; loading a kubeconfig without client-node's localhost fallback.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { connect } from '@nats-io/transport-node';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BusError } from '../../../src/bus/errors.ts';
import { count, port } from '../../../src/cli/args.ts';
import { confirm, interactive } from '../../../src/cli/confirm.ts';
import { startSummary } from '../../../src/cli/dev.ts';
import { parseWhen } from '../../../src/cli/dlq.ts';
import { CliError, reportError, toCliError } from '../../../src/cli/errors.ts';
import { kubeConfigSource, loadClientKubeConfig } from '../../../src/kube/client-config.ts';
import { KubeConfigError, SimpleKubeConfig } from '../../../src/kube/config.ts';

const errnoOf = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
};

describe('toCliError', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-err-'));

  it('maps file errors to one line naming the path', () => {
    expect(toCliError(errnoOf(() => readFileSync(dir)))).toMatchObject({
      code: 'BadInput',
      message: expect.stringMatching(/^is a folder, not a file/),
    });
    expect(toCliError(errnoOf(() => readFileSync(join(dir, 'nope.yaml'))))?.message).toBe(
      `cannot read ${join(dir, 'nope.yaml')}: no such file or folder`,
    );
  });

  it('maps a port in use, naming the port', async () => {
    const a = createServer();
    await new Promise<void>((r) => a.listen(0, '127.0.0.1', r));
    const taken = (a.address() as { port: number }).port;
    const b = createServer();
    const err = await new Promise<unknown>((r) => {
      b.once('error', r);
      b.listen(taken, '127.0.0.1');
    });
    a.close();
    expect(toCliError(err)).toMatchObject({ code: 'PortUnavailable' });
    expect(toCliError(err)?.message).toContain(`port ${taken} is already in use`);
  });

  it('maps a kubeconfig problem, an unreachable NATS server and a bus error', async () => {
    expect(toCliError(errnoOf(() => SimpleKubeConfig.loadFile(join(dir, 'none'))))?.code).toBe('KubeConfig');
    const refused = await connect({ servers: 'nats://127.0.0.1:1', timeout: 2000 }).catch((e: unknown) => e);
    expect(toCliError(refused)).toMatchObject({ code: 'BusUnreachable' });
    expect(toCliError(refused)?.message).toMatch(/connection refused \(127\.0\.0\.1:1\)/);
    expect(toCliError(new BusError('BusUnavailable', 'no stream for this bus'))?.code).toBe('BusUnreachable');
  });

  it('maps a TLS handshake failure to a hint about the CA', () => {
    const tls = Object.assign(
      new Error('unable to verify the first certificate; if the root CA is installed locally, try'),
      {
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      },
    );
    expect(toCliError(new Error('wrapped', { cause: tls }))).toMatchObject({
      code: 'Tls',
      message: expect.stringMatching(
        /^TLS: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); give/,
      ),
    });
  });

  it('maps schema errors with their paths, and Kubernetes API answers', () => {
    const r = z.object({ spec: z.object({ n: z.number() }) }).safeParse({ spec: { n: 'x' } });
    expect(toCliError(r.error)?.message).toMatch(/^spec\.n: /);
    const api = Object.assign(new Error('HTTP-Code: 404\nMessage: Unknown\nBody: ...'), {
      code: 404,
      body: '{"kind":"Status","message":"sensors.argoproj.io \\"x\\" not found"}',
    });
    expect(toCliError(api)).toMatchObject({
      code: 'NotFound',
      message: 'the Kubernetes API answered 404: sensors.argoproj.io "x" not found',
    });
  });

  it('looks through causes, and leaves bugs alone', () => {
    const wrapped = new Error('outer', { cause: new CliError('Usage', 'inner') });
    expect(toCliError(wrapped)?.message).toBe('inner');
    expect(toCliError(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBeUndefined();
    expect(toCliError('a string')).toBeUndefined();
  });

  it('reports a user error as one line (exit 2) and a bug with its stack (exit 1)', () => {
    const lines: string[] = [];
    expect(reportError('dlq', new CliError('Usage', 'bad\n  thing'), (s) => lines.push(s))).toBe(2);
    expect(lines).toEqual(['sluice dlq: bad thing\n']);
    expect(reportError('dlq', new TypeError('boom'), (s) => lines.push(s))).toBe(1);
    expect(lines[1]).toMatch(/^sluice dlq: unexpected error \(please report it\): TypeError: boom\n\s+at /);
  });
});

describe('flag checks', () => {
  it('accepts ports and counts, refuses the rest with a commander argument error', () => {
    expect(port('0')).toBe('0');
    expect(port('65535')).toBe('65535');
    for (const bad of ['abc', '-1', '65536', '1.5', ''])
      expect(() => port(bad)).toThrow(InvalidArgumentError);
    expect(count('4')).toBe('4');
    for (const bad of ['0', 'x', '2.5']) expect(() => count(bad)).toThrow(InvalidArgumentError);
  });

  it('a bad --since is a usage error', () => {
    expect(() => parseWhen('yesterday-ish')).toThrow(CliError);
    expect(parseWhen('2h', 10 * 3600_000).getTime()).toBe(8 * 3600_000);
  });
});

describe('purge confirmation', () => {
  const ask = async (answer: string | null) => {
    const input = new PassThrough();
    const output = new PassThrough();
    let asked = '';
    output.on('data', (c: Buffer) => {
      asked += c.toString();
    });
    const p = confirm('purge 3 dead letter(s)?', input, output);
    if (answer === null) input.end();
    else input.write(`${answer}\n`);
    const ok = await p;
    return { ok, asked };
  };

  it('is yes only for y or yes', async () => {
    expect(await ask('y')).toEqual({ ok: true, asked: 'purge 3 dead letter(s)? [y/N] ' });
    expect((await ask('YES')).ok).toBe(true);
    expect((await ask('')).ok).toBe(false);
    expect((await ask('n')).ok).toBe(false);
    expect((await ask('yes please')).ok).toBe(false);
    expect((await ask(null)).ok).toBe(false);
  });

  it('asks only when both stdin and stderr are terminals', () => {
    expect(interactive({ isTTY: true }, { isTTY: true })).toBe(true);
    expect(interactive({ isTTY: true }, {})).toBe(false);
    expect(interactive({}, { isTTY: true })).toBe(false);
  });
});

describe('sluice dev start summary', () => {
  it('says ready only when everything started', () => {
    const said: string[] = [];
    startSummary([], 2, (l) => said.push(l));
    expect(said).toEqual(['ready; Ctrl-C to stop']);
  });

  it('names every object that did not start, never ready; --strict throws', () => {
    const said: string[] = [];
    const failed = [
      { what: 'EventSource/default/hooks', reason: 'port 12000 is in use (a.yaml)' },
      { what: 'invalid manifest', reason: 'b.yaml: Sensor/x: spec.triggers: required' },
    ];
    startSummary(failed, 1, (l) => said.push(l));
    expect(said.join('\n')).not.toMatch(/ready/);
    expect(said).toEqual([
      'not started (2):',
      '  EventSource/default/hooks: port 12000 is in use (a.yaml)',
      '  invalid manifest: b.yaml: Sensor/x: spec.triggers: required',
      expect.stringMatching(/^started with problems: 1 object\(s\) running, 2 not/),
    ]);
    expect(() => startSummary(failed, 1, () => {}, true)).toThrow(
      expect.objectContaining({ code: 'NotStarted' }),
    );
  });
});

describe('kubeconfig for command-line tools', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-kc-'));
  const kubeconfig = (server: string) => {
    const file = join(dir, `kc-${Math.random().toString(36).slice(2)}`);
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    return file;
  };

  it('finds no kubeconfig instead of falling back to http://localhost:8080', () => {
    const env = { HOME: dir };
    expect(kubeConfigSource(undefined, env)).toBeUndefined();
    expect(kubeConfigSource(undefined, { ...env, KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toEqual({
      inCluster: true,
    });
    expect(kubeConfigSource('/x', env)).toEqual({ file: '/x' });
    expect(kubeConfigSource(undefined, { ...env, KUBECONFIG: `/a:/b` })).toEqual({ file: '/a' });
  });

  it('uses a plain http:// server (kubectl proxy) as kubectl does, and keeps https verified', async () => {
    const plain = loadClientKubeConfig(kubeconfig('http://127.0.0.1:8001'));
    expect(plain.getCurrentCluster()).toMatchObject({ server: 'http://127.0.0.1:8001', skipTLSVerify: true });
    // client-node refuses http:// without skipTLSVerify when it builds the request options.
    expect(() => plain.createDispatcherOptions(plain.getCurrentCluster(), {})).not.toThrow();
    const raw = new KubeConfig();
    raw.loadFromFile(kubeconfig('http://127.0.0.1:8001'));
    expect(() => raw.createDispatcherOptions(raw.getCurrentCluster(), {})).toThrow(
      /HTTP protocol is not allowed/,
    );
    const tls = loadClientKubeConfig(kubeconfig('https://127.0.0.1:6443'));
    expect(tls.getCurrentCluster()?.skipTLSVerify).toBeFalsy();
  });

  it('a missing or unreadable kubeconfig is a KubeConfigError', () => {
    expect(() => loadClientKubeConfig(join(dir, 'missing'))).toThrow(KubeConfigError);
    expect(() => loadClientKubeConfig(join(dir, 'missing'))).toThrow(
      /cannot read kubeconfig .*missing: ENOENT/,
    );
  });
});
