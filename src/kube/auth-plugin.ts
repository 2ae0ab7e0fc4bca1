// How every subcommand talks about a kubeconfig user's credential plugin (`exec:` such as
// `aws eks get-token` or `gke-gcloud-auth-plugin`, or a legacy `auth-provider:`), so that
// `sluice controller` (which does not run plugins) and `sluice dlq` / `sluice dev` (which run
// them through client-node) name the same file, user and plugin the same way:
//   kubeconfig PATH: user "U" uses the exec plugin "CMD", which ...
/** The parts of a kubeconfig user (raw YAML keys or client-node's User) that name a plugin. */
export interface PluginUser {
  exec?: unknown;
  'auth-provider'?: unknown;
  authProvider?: unknown;
}

/** `the exec plugin "aws"`, `the auth-provider plugin "gcp"`, or undefined when there is none. */
export function authPluginOf(user: PluginUser | null | undefined): string | undefined {
  if (!user) return undefined;
  const exec = user.exec as { command?: unknown } | undefined;
  if (exec) return `the exec plugin "${typeof exec.command === 'string' ? exec.command : '?'}"`;
  const provider = (user['auth-provider'] ?? user.authProvider) as { name?: unknown } | undefined;
  if (provider)
    return `the auth-provider plugin "${typeof provider.name === 'string' ? provider.name : '?'}"`;
  return undefined;
}

/** `kubeconfig PATH: user "U" uses PLUGIN, which WHY`: the message of a KubeConfigError. */
export function authPluginMessage(
  where: { file: string; user: string; plugin: string },
  why: string,
): string {
  return `kubeconfig ${where.file}: user "${where.user}" uses ${where.plugin}, which ${why}`;
}

/**
 * Why a plugin run failed, in words: not found or not executable (spawn errors), its exit with
 * the first line it wrote on stderr (client-node rejects with the plugin's stderr as message),
 * or output that is not an ExecCredential.
 */
export function pluginFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.syscall?.startsWith('spawn')) {
    if (e.code === 'ENOENT') return 'is not installed: not found on PATH';
    if (e.code === 'EACCES') return 'cannot be run: permission denied';
    return `cannot be run: ${e.code ?? e.message}`;
  }
  if (err instanceof SyntaxError) return `printed no ExecCredential JSON (${err.message})`;
  const line = String(e?.message ?? err)
    .split('\n')
    .map((l) => l.trim())
    .find(Boolean);
  return line ? `failed: ${line.slice(0, 300)}` : 'failed and wrote nothing on stderr';
}
