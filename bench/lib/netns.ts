// Network isolation for the side-by-side benchmark (bench/upstream.ts). Upstream Argo Events
// binds its servers to every interface (metrics on :7777 in every EventSource and Sensor,
// webhooks on :<port>), as it may inside a pod. So the benchmark runs in a private network
// namespace of its own (only `lo`, nothing reaches outside it), and each EventSource and Sensor,
// sluice's and upstream's alike, runs in a "pod" namespace joined to it by one veth pair:
//
//   benchmark namespace (lo + podNw per pod)          pod namespace N (lo + podNp)
//   nats-server, sink: 0.0.0.0       ◀──veth──▶      one EventSource or Sensor: reaches them at
//   load generator                                   10.213.N.1, is reached at 10.213.N.2
//
// Linux only, as root (network namespaces).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const MARK = 'SLUICE_BENCH_NET';
const PREFIX = 'sluice-bench-';

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Re-runs this script inside a new network namespace (`unshare --net`) unless it already runs in
 * one, and exits with its status; inside, brings `lo` up and deletes pod namespaces left by
 * earlier runs whose process is gone. Throws when not root or when `unshare`/`ip` are missing.
 */
export function enterPrivateNetwork(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('bench/upstream.ts needs root: it runs each product in network namespaces of its own');
  }
  if (process.env[MARK] !== 'private') {
    const argv = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
    const r = spawnSync('unshare', ['--net', '--', process.execPath, ...argv], {
      stdio: 'inherit',
      env: { ...process.env, [MARK]: 'private' },
    });
    if (r.error) throw new Error(`unshare --net: ${r.error.message} (util-linux is needed)`);
    process.exit(r.status ?? 1);
  }
  ip(['link', 'set', 'lo', 'up']);
  if (!existsSync('/run/netns')) return;
  for (const name of readdirSync('/run/netns')) {
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (name.startsWith(PREFIX) && pid > 0 && !alive(pid)) {
      try {
        ip(['netns', 'delete', name]);
      } catch {
        // another run removed it
      }
    }
  }
}

/** One pod network namespace, joined to the benchmark's namespace by a veth pair. */
export interface PodNet {
  netns: string;
  /** This side of the veth: servers listening on 0.0.0.0 here are reached at this address. */
  hostIp: string;
  /** The pod's side of the veth. */
  podIp: string;
  /** Command prefix that runs a program inside the pod's namespace. */
  wrap: string[];
  destroy(): void;
}

const pods = new Set<PodNet>();
process.once('exit', () => {
  for (const p of pods) p.destroy();
});

/** The benchmark side's address of pod `index`'s veth (the pod reaches servers there). */
export const podNetAddress = (index: number) => `10.213.${index}.1`;

/** Creates pod namespace `index` (0–250): 10.213.<index>.1 on this side, .2 in the pod. */
export function podNet(index: number): PodNet {
  const netns = `${PREFIX}${process.pid}-${index}`;
  const here = `pod${index}w`;
  const there = `pod${index}p`;
  const pod: PodNet = {
    netns,
    hostIp: podNetAddress(index),
    podIp: `10.213.${index}.2`,
    wrap: ['nsenter', `--net=/run/netns/${netns}`, '--'],
    destroy() {
      pods.delete(pod);
      for (const args of [
        ['netns', 'delete', netns],
        ['link', 'delete', here],
      ]) {
        try {
          ip(args);
        } catch {
          // already gone (deleting the namespace removes the pair)
        }
      }
    },
  };
  pods.add(pod);
  try {
    ip(['netns', 'add', netns]);
    ip(['link', 'add', here, 'type', 'veth', 'peer', 'name', there, 'netns', netns]);
    ip(['addr', 'add', `${pod.hostIp}/30`, 'dev', here]);
    ip(['link', 'set', here, 'up']);
    ip(['-n', netns, 'link', 'set', 'lo', 'up']);
    ip(['-n', netns, 'addr', 'add', `${pod.podIp}/30`, 'dev', there]);
    ip(['-n', netns, 'link', 'set', there, 'up']);
  } catch (err) {
    pod.destroy();
    throw err;
  }
  return pod;
}
