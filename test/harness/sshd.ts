// OpenSSH's sshd (Debian's openssh-server) with its SFTP subsystem for the sftp source tests: on
// a free loopback port, its own host key and config, key authentication only, for the current
// user, with a client key pair it generates (and a second key it does not accept).
// `server.kill()` + `server.start()` is a server crash and restart. Needs root (sshd's
// privilege separation), as CI has.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess } from './proc.ts';
import { PortServer } from './servers.ts';

const SSHD = '/usr/sbin/sshd';

export function sshdMissing(): string | null {
  if (!existsSync(SSHD)) return 'sshd is not installed (Debian package openssh-server; .ci/run installs it)';
  if (process.getuid?.() !== 0) return 'sshd needs root here (privilege separation)';
  return null;
}

export interface Sshd {
  address: string;
  user: string;
  /** A private key sshd accepts, and one it does not. */
  key: string;
  otherKey: string;
  /** A folder the tests may write in (absolute). */
  root: string;
  server: PortServer;
  stop(): Promise<void>;
}

function keygen(path: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
  return readFileSync(path, 'utf8');
}

export async function startSshd(): Promise<Sshd> {
  const missing = sshdMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sshd-'));
  mkdirSync('/run/sshd', { recursive: true });
  const port = await freePort();
  keygen(join(dir, 'host_key'));
  const key = keygen(join(dir, 'client_key'));
  const otherKey = keygen(join(dir, 'other_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  const root = join(dir, 'files');
  mkdirSync(root);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const proc = new ManagedProcess('sshd', SSHD, ['-D', '-e', '-f', config], join(dir, 'sshd.log'));
  const server = new PortServer(proc, port, 20_000);
  await server.start();
  return {
    address: `127.0.0.1:${port}`,
    user: userInfo().username,
    key,
    otherKey,
    root,
    server,
    stop: () => server.stop(),
  };
}
