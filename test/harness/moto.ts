// moto in server mode (from PyPI, in a venv `make tools` made): a local AWS API for the SQS, SNS
// and S3 tests, on a free loopback port. It enforces credentials: the first few calls (before
// any credential exists) are free, and `startMoto` uses them to create an IAM user with full
// rights and an access key; every later call must be signed with that key (a wrong key gets
// AWS's own "invalid security token" answer). `kill()` + `start()` = the endpoint down and back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess } from './proc.ts';
import { cachedTool, PortServer } from './servers.ts';

export function motoMissing(): string | null {
  return cachedTool('moto', 'MOTO_VERSION', 'bin/moto_server').missing ?? null;
}

export interface Moto {
  endpoint: string;
  region: string;
  /** An access key of a user allowed everything. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  server: PortServer;
  stop(): Promise<void>;
}

/** Free (unauthenticated) calls before moto starts checking keys: the three IAM calls below. */
const FREE_CALLS = 3;

async function iam(endpoint: string, params: Record<string, string>): Promise<string> {
  const body = new URLSearchParams({ Version: '2010-05-08', ...params });
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      // moto routes by the signed service name; the signature itself is not checked for these.
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
    },
    body,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`moto IAM ${params.Action}: ${res.status} ${text}`);
  return text;
}

export async function startMoto(): Promise<Moto> {
  const bin = cachedTool('moto', 'MOTO_VERSION', 'bin/moto_server');
  if (!bin.path) throw new Error(bin.missing);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-moto-'));
  const port = await freePort();
  const proc = new ManagedProcess(
    'moto',
    bin.path,
    ['-H', '127.0.0.1', '-p', String(port)],
    join(dir, 'moto.log'),
    {
      ...process.env,
      INITIAL_NO_AUTH_ACTION_COUNT: String(FREE_CALLS),
      MOTO_ALLOW_NONEXISTENT_REGION: 'true',
    },
  );
  const server = new PortServer(proc, port, 60_000);
  await server.start();
  const endpoint = `http://127.0.0.1:${port}`;
  await iam(endpoint, { Action: 'CreateUser', UserName: 'sluice' });
  await iam(endpoint, {
    Action: 'PutUserPolicy',
    UserName: 'sluice',
    PolicyName: 'all',
    PolicyDocument: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
    }),
  });
  const key = await iam(endpoint, { Action: 'CreateAccessKey', UserName: 'sluice' });
  const accessKeyId = /<AccessKeyId>([^<]+)</.exec(key)?.[1];
  const secretAccessKey = /<SecretAccessKey>([^<]+)</.exec(key)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error(`moto: no access key in ${key}`);
  return {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId, secretAccessKey },
    server,
    stop: () => server.stop(),
  };
}
