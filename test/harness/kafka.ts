// Apache Kafka for the Kafka source and trigger tests: one KRaft broker (broker + controller in
// one JVM) from the jars `make tools` copied from Maven Central, on free loopback ports with its
// own log folder. Boots in about 10 s. `kill()` + `start()` = a broker crash and restart on the
// same data.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess } from './proc.ts';
import { cachedTool, PortServer } from './servers.ts';

function javaMissing(): string | null {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'java is not installed (Debian package default-jdk-headless; .ci/run installs it)';
  }
}

/** Why Kafka cannot run here, or null. */
export function kafkaMissing(): string | null {
  return javaMissing() ?? cachedTool('kafka', 'KAFKA_VERSION', 'kafka-classpath').missing ?? null;
}

/** The SASL/PLAIN user the broker's SASL_PLAINTEXT listener accepts. */
export const KAFKA_SASL_USER = { username: 'alice', password: 'alice-secret' };

export interface KafkaBroker {
  /** host:port of the PLAINTEXT listener. */
  bootstrap: string;
  /** host:port of the SASL_PLAINTEXT listener (PLAIN, user KAFKA_SASL_USER). */
  saslBootstrap: string;
  server: PortServer;
  stop(): Promise<void>;
}

const JVM = ['-Xms64m', '-Xmx384m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xshare:auto'];

export async function startKafka(): Promise<KafkaBroker> {
  const missing = kafkaMissing();
  if (missing) throw new Error(missing);
  const classpath = execFileSync(cachedTool('kafka', 'KAFKA_VERSION', 'kafka-classpath').path!, {
    encoding: 'utf8',
  }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-'));
  const [port, controller, sasl] = [await freePort(), await freePort(), await freePort()];
  const props = join(dir, 'server.properties');
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controller}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${sasl},CONTROLLER://127.0.0.1:${controller}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${sasl}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT',
      'sasl.enabled.mechanisms=PLAIN',
      `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_${KAFKA_SASL_USER.username}="${KAFKA_SASL_USER.password}";`,
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=3',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=true',
      '',
    ].join('\n'),
  );
  execFileSync(
    'java',
    [
      ...JVM,
      '-cp',
      classpath,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      'c2x1aWNlLXRlc3QtY2x1cw',
      '-c',
      props,
    ],
    { stdio: 'ignore' },
  );
  const proc = new ManagedProcess(
    'kafka',
    'java',
    [...JVM, '-cp', classpath, 'kafka.Kafka', props],
    join(dir, 'kafka.log'),
  );
  const server = new PortServer(proc, port, 60_000);
  await server.start();
  return {
    bootstrap: `127.0.0.1:${port}`,
    saslBootstrap: `127.0.0.1:${sasl}`,
    server,
    stop: () => server.stop(),
  };
}
