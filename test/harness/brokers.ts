// Real brokers from Debian's packages for the EventSource adapter tests: redis-server and
// mosquitto, each on a free loopback port with its own folder, stoppable. `brokerMissing(name)`
// names what is missing so a test can skip with a clear title.
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess, waitFor } from './proc.ts';

const SBIN = ['/usr/sbin', '/sbin', '/usr/bin'];

function find(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...SBIN]) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // next
    }
  }
  return undefined;
}

const RABBITMQ = '/usr/lib/rabbitmq/bin/rabbitmq-server';

export function brokerMissing(name: 'redis-server' | 'mosquitto' | 'rabbitmq-server'): string | null {
  const found = name === 'rabbitmq-server' ? existsSync(RABBITMQ) : find(name);
  return found ? null : `${name} is not installed (Debian package ${name}; .ci/run installs it)`;
}

export interface Broker {
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

async function run(
  name: string,
  bin: string,
  args: string[],
  dir: string,
  port: number,
): Promise<ManagedProcess> {
  const proc = new ManagedProcess(name, bin, args, join(dir, `${name}.log`));
  proc.start();
  await waitFor(
    `${name} on :${port}`,
    async () => {
      if (!proc.running) throw new Error(`${name} exited: ${proc.tail()}`);
      return portOpen(port);
    },
    { timeoutMs: 20_000, onTimeout: () => proc.tail() },
  );
  return proc;
}

export async function startRedis(): Promise<Broker> {
  const bin = find('redis-server');
  if (!bin) throw new Error(brokerMissing('redis-server')!);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  const port = await freePort();
  const proc = await run(
    'redis-server',
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ],
    dir,
    port,
  );
  return { url: `redis://127.0.0.1:${port}`, host: '127.0.0.1', port, stop: () => proc.stop() };
}

export async function startMosquitto(): Promise<Broker> {
  const bin = find('mosquitto');
  if (!bin) throw new Error(brokerMissing('mosquitto')!);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-mqtt-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      '',
    ].join('\n'),
  );
  const proc = await run('mosquitto', bin, ['-c', conf], dir, port);
  return { url: `mqtt://127.0.0.1:${port}`, host: '127.0.0.1', port, stop: () => proc.stop() };
}

/**
 * RabbitMQ as the current user (the Debian wrapper in /usr/sbin switches to the rabbitmq user):
 * its own node name, ports, data and log folders, no plugins; guest may log in from loopback.
 * Boots in about 10 s.
 */
export async function startRabbitMQ(): Promise<Broker> {
  if (!existsSync(RABBITMQ)) throw new Error(brokerMissing('rabbitmq-server')!);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-rabbitmq-'));
  for (const d of ['mnesia', 'log']) mkdirSync(join(dir, d));
  const port = await freePort();
  const dist = await freePort();
  writeFileSync(join(dir, 'plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq.conf'), 'loopback_users = none\n');
  const env = {
    ...process.env,
    HOME: dir,
    RABBITMQ_NODENAME: `sluice-${port}@localhost`,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'plugins'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const proc = new ManagedProcess('rabbitmq-server', RABBITMQ, [], join(dir, 'rabbitmq-server.log'), env);
  proc.start();
  await waitFor(
    `rabbitmq-server on :${port}`,
    async () => {
      if (!proc.running) throw new Error(`rabbitmq-server exited: ${proc.tail()}`);
      return portOpen(port);
    },
    { timeoutMs: 60_000, intervalMs: 250, onTimeout: () => proc.tail() },
  );
  return { url: `amqp://guest:guest@127.0.0.1:${port}`, host: '127.0.0.1', port, stop: () => proc.stop() };
}
