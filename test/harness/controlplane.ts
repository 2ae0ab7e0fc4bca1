// A real Kubernetes control plane for tests, the way controller-runtime's envtest builds one:
// etcd + kube-apiserver on loopback, our own PKI, RBAC authorization, a kubeconfig file and a
// ready @kubernetes/client-node KubeConfig. Stoppable and restartable on the same data and ports.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { ensurePki, type Pki } from './certs.ts';
import { freePort } from './ports.ts';
import { ManagedProcess, waitFor } from './proc.ts';
import { requireTool } from './tools.ts';

export interface ControlPlaneOptions {
  /** Folder for etcd data, PKI, kubeconfig and logs; a fresh temp folder when omitted. */
  dir?: string;
  /** Extra kube-apiserver flags. */
  apiServerArgs?: string[];
  /** Address etcd and the API server listen on and advertise; 127.0.0.1 when omitted. */
  host?: string;
  /** Command prefix for every process, e.g. `['nsenter', '--net=/run/netns/n', '--']`. */
  wrap?: string[];
  /** Fixed ports (a network namespace of its own has no one to compete with); free ones otherwise. */
  ports?: { etcd: number; etcdPeer: number; api: number };
  /** Service ClusterIP range; 10.0.0.0/24 when omitted. */
  serviceCidr?: string;
  /** More subjectAltName entries for the serving certificate, e.g. `IP:10.96.0.1`. */
  extraSans?: string[];
  /**
   * Keep the ServiceAccount admission plugin (pods get their token volume). Needs a
   * kube-controller-manager to create the namespaces' default ServiceAccounts.
   */
  serviceAccountAdmission?: boolean;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  kubeconfigPath: string;
  /** A fresh KubeConfig (admin, system:masters) each call. */
  kubeConfig(): KubeConfig;
  pki: Pki;
  dir: string;
  etcdLog: string;
  apiServerLog: string;
  /** Stops the API server and etcd gracefully. */
  stop(): Promise<void>;
  /** Starts etcd and the API server again (same data, same ports) and waits on /readyz. */
  start(): Promise<void>;
  /** Restarts only the API server process (etcd keeps running). */
  restartApiServer(): Promise<void>;
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  logTail(lines?: number): string;
}

function httpsGet(url: string, pki: Pki): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const apiServerBin = requireTool('kube-apiserver');
  const etcdBin = requireTool('etcd');
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sluice-kube-'));
  mkdirSync(dir, { recursive: true });
  const pki = ensurePki(join(dir, 'pki'), opts.extraSans);
  const host = opts.host ?? '127.0.0.1';
  const etcdPort = opts.ports?.etcd ?? (await freePort());
  const etcdPeerPort = opts.ports?.etcdPeer ?? (await freePort());
  const apiPort = opts.ports?.api ?? (await freePort());
  const etcdLog = join(dir, 'etcd.log');
  const apiServerLog = join(dir, 'kube-apiserver.log');
  const etcdUrl = `http://${host}:${etcdPort}`;
  const server = `https://${host}:${apiPort}`;
  const wrap = opts.wrap ?? [];
  const managed = (name: string, bin: string, args: string[], log: string) =>
    wrap.length
      ? new ManagedProcess(name, wrap[0]!, [...wrap.slice(1), bin, ...args], log)
      : new ManagedProcess(name, bin, args, log);

  const etcd = managed(
    'etcd',
    etcdBin,
    [
      '--name',
      'sluice-test',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      etcdUrl,
      '--advertise-client-urls',
      etcdUrl,
      '--listen-peer-urls',
      `http://${host}:${etcdPeerPort}`,
      '--initial-advertise-peer-urls',
      `http://${host}:${etcdPeerPort}`,
      '--initial-cluster',
      `sluice-test=http://${host}:${etcdPeerPort}`,
      // Tests need speed, not crash-durability of etcd itself (a graceful stop still syncs).
      '--unsafe-no-fsync',
      '--log-level',
      'warn',
    ],
    etcdLog,
  );

  const apiServer = managed(
    'kube-apiserver',
    apiServerBin,
    [
      '--etcd-servers',
      etcdUrl,
      '--bind-address',
      host,
      '--advertise-address',
      host,
      '--secure-port',
      String(apiPort),
      '--cert-dir',
      join(dir, 'serving'),
      '--tls-cert-file',
      pki.servingCert,
      '--tls-private-key-file',
      pki.servingKey,
      '--client-ca-file',
      pki.caCert,
      '--service-account-issuer',
      'https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file',
      pki.saPub,
      '--service-account-signing-key-file',
      pki.saKey,
      '--service-cluster-ip-range',
      opts.serviceCidr ?? '10.0.0.0/24',
      '--authorization-mode',
      'RBAC',
      '--allow-privileged=true',
      // Without a controller-manager nothing creates default ServiceAccounts for Pods.
      ...(opts.serviceAccountAdmission ? [] : ['--disable-admission-plugins', 'ServiceAccount']),
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--v',
      '1',
      ...(opts.apiServerArgs ?? []),
    ],
    apiServerLog,
  );

  const kubeconfigPath = join(dir, 'kubeconfig');
  const b64 = (p: string) => readFileSync(p).toString('base64');
  writeFileSync(
    kubeconfigPath,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'sluice-test', cluster: { server, 'certificate-authority-data': b64(pki.caCert) } }],
      users: [
        {
          name: 'admin',
          user: { 'client-certificate-data': b64(pki.adminCert), 'client-key-data': b64(pki.adminKey) },
        },
      ],
      contexts: [
        { name: 'sluice-test', context: { cluster: 'sluice-test', user: 'admin', namespace: 'default' } },
      ],
      'current-context': 'sluice-test',
    }),
    { mode: 0o600 },
  );

  const tails = (lines = 30) =>
    `--- etcd log ---\n${etcd.tail(lines)}\n--- kube-apiserver log ---\n${apiServer.tail(lines)}`;

  const etcdReady = () =>
    waitFor(
      'etcd /health',
      async () => {
        if (!etcd.running) throw new Error('etcd exited');
        const res = await fetch(`${etcdUrl}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      },
      { timeoutMs: 30_000, intervalMs: 100, onTimeout: () => tails() },
    );

  const apiReady = () =>
    waitFor(
      'kube-apiserver /readyz',
      async () => {
        if (!apiServer.running) throw new Error('kube-apiserver exited');
        const res = await httpsGet(`${server}/readyz`, pki);
        return res.status === 200;
      },
      { timeoutMs: 90_000, intervalMs: 200, onTimeout: () => tails() },
    );

  const cp: ControlPlane = {
    server,
    kubeconfigPath,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    },
    pki,
    dir,
    etcdLog,
    apiServerLog,
    async stop() {
      await apiServer.stop();
      await etcd.stop();
    },
    async start() {
      if (!etcd.running) {
        etcd.start();
        await etcdReady();
      }
      await cp.startApiServer();
    },
    async startApiServer() {
      apiServer.start();
      await apiReady();
    },
    stopApiServer: () => apiServer.stop(),
    async restartApiServer() {
      await apiServer.stop();
      await cp.startApiServer();
    },
    logTail: tails,
  };
  try {
    await cp.start();
  } catch (err) {
    await cp.stop();
    throw err;
  }
  return cp;
}
