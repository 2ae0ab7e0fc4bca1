// Test helpers for cutting one client off the API server without touching the server: a loopback
// TCP proxy that can drop every connection and refuse new ones, and a KubeConfig that goes
// through it (TLS passes through untouched; the serving cert is for 127.0.0.1 whatever the port).
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface TcpProxy {
  /** `https://127.0.0.1:PORT`, for a kubeconfig. */
  server: string;
  /** Drops every open connection and resets new ones until heal(). */
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  let broken = false;
  const srv = createServer((client) => {
    if (broken) {
      client.resetAndDestroy();
      return;
    }
    const upstream = tcpConnect(Number(port), hostname);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  if (!addr || typeof addr === 'string') throw new Error('proxy has no port');
  return {
    server: `https://127.0.0.1:${addr.port}`,
    cut() {
      broken = true;
      for (const s of open) s.resetAndDestroy();
      open.clear();
    },
    heal() {
      broken = false;
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

/** A copy of `kc` whose current cluster is reached at `server` instead. */
export function kubeConfigVia(kc: KubeConfig, server: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error('kubeconfig has no current cluster/user');
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: [{ ...cluster, server }],
    users: [user],
    contexts: [{ name: 'via-proxy', cluster: cluster.name, user: user.name, namespace: 'default' }],
    currentContext: 'via-proxy',
  });
  return out;
}
