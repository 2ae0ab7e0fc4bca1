// Leaves the host as it was after a node: no process, mount, cgroup, network namespace, veth or
// route of it remains. Synchronous, best-effort and idempotent, so it also runs from an 'exit'
// handler and, for a node whose test process died, from the next run (via its state file).
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { destroyNet, shQuiet } from './net.ts';

/** What cleanup needs to know of a node; written to STATE_DIR/<index>.json while it runs. */
export interface NodeState {
  index: number;
  /** The test process that owns the node. */
  pid: number;
  dir: string;
  runDir: string;
  cgroupRoot: string;
  containerdSocket: string;
  /** Folders removed at the end (after unmounting): containerd's store, kubelet's root, volumes. */
  scratch: string[];
}

export const STATE_DIR = '/run/sluice-node';
const CGROUP_FS = '/sys/fs/cgroup';

export function writeState(s: NodeState): void {
  writeFileSync(join(STATE_DIR, `${s.index}.json`), JSON.stringify(s));
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Controller folders of the node's cgroup root, deepest first. */
function cgroupDirs(cgroupRoot: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: string[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => join(d, e.name));
    } catch {
      return;
    }
    for (const e of entries) walk(e);
    out.push(d);
  };
  for (const ctl of existsSync(CGROUP_FS) ? readdirSync(CGROUP_FS) : []) {
    const d = join(CGROUP_FS, ctl, cgroupRoot);
    if (existsSync(d)) walk(d);
  }
  return out;
}

function pidsIn(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const d of dirs) {
    try {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
    } catch {
      // gone
    }
  }
  return [...pids];
}

/** containerd shims started for this node's containerd (they outlive it). */
function shimPids(socket: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('containerd-shim-runc-v2') && cmd.includes(socket)) out.push(Number(p));
    } catch {
      // exited
    }
  }
  return out;
}

function kill(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited
    }
  }
}

/** Mount points at or under any of `prefixes`, deepest first. */
function mountsUnder(prefixes: string[]): string[] {
  const mps = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => !!mp)
    .map((mp) => mp.replace(/\\040/g, ' '));
  return [...new Set(mps.filter((mp) => prefixes.some((p) => mp === p || mp.startsWith(`${p}/`))))].sort(
    (a, b) => b.length - a.length,
  );
}

/** Kills, unmounts and deletes everything of the node described by `s`. */
export function cleanupNode(s: NodeState): void {
  const cgroups = cgroupDirs(s.cgroupRoot);
  // Pods first (their processes live in the node's cgroups), then the shims that ran them.
  for (let i = 0; i < 20; i++) {
    const pids = [...pidsIn(cgroups), ...shimPids(s.containerdSocket)];
    if (!pids.length) break;
    kill(pids);
    sleepSync(100);
  }
  for (let i = 0; i < 3; i++) {
    const mps = mountsUnder([s.dir, s.runDir]);
    if (!mps.length) break;
    for (const mp of mps) shQuiet('umount', ['--lazy', mp]);
  }
  destroyNet(s.index);
  for (const d of cgroupDirs(s.cgroupRoot)) {
    try {
      rmdirSync(d);
    } catch {
      // busy or gone
    }
  }
  for (const d of [...s.scratch, s.runDir]) rmSync(d, { recursive: true, force: true });
  try {
    unlinkSync(join(STATE_DIR, `${s.index}.json`));
  } catch {
    // gone
  }
}

/** Cleans up nodes whose test process is gone (a crash or a kill left them behind). */
export function cleanupStaleNodes(): void {
  if (!existsSync(STATE_DIR)) return;
  for (const f of readdirSync(STATE_DIR)) {
    if (!f.endsWith('.json')) continue;
    try {
      const s = JSON.parse(readFileSync(join(STATE_DIR, f), 'utf8')) as NodeState;
      if (s.pid === process.pid || alive(s.pid)) continue;
      console.warn(`[sluice node] cleaning up node ${s.index} left by process ${s.pid}`);
      cleanupNode(s);
    } catch {
      // unreadable: leave it
    }
  }
}

/** Any processes still in the node's cgroups (used to report what a graceful stop left). */
export function leftovers(s: NodeState): number[] {
  return pidsIn(cgroupDirs(s.cgroupRoot));
}
