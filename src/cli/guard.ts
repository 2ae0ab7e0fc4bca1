// The process-level guard every role runs under (installed by main.ts before a role starts). A
// rejection nobody handled or an exception nobody caught is a bug, and each known one is fixed
// where it starts; this guard makes sure the next unknown one costs a log line and a counted
// metric, not the process: in `sluice dev` one process carries every EventSource and Sensor, and
// in a pod a crash loses every request in flight. The counter
// `sluice_unexpected_errors_total{kind}` lets an alert catch what would otherwise be silent.
import { Counter, type Registry } from 'prom-client';
import { rootLogger } from '../observability/logger.ts';
import { adopt, registry as processRegistry } from '../observability/metrics.ts';

export type UnexpectedKind = 'unhandledRejection' | 'uncaughtException';

let installed = false;

function describe(reason: unknown): { err: string; stack?: string } {
  if (reason instanceof Error)
    return { err: reason.message, ...(reason.stack ? { stack: reason.stack } : {}) };
  return { err: String(reason) };
}

/**
 * Installs the handlers once per process. `registry` (default: the process registry) receives the
 * counter; `log` (default: the root logger at the time of the error) receives one error line per
 * occurrence.
 */
export function installProcessGuard(
  registry: Registry = processRegistry(),
  log: () => { error(o: object, msg: string): void } = rootLogger,
): void {
  if (installed) return;
  installed = true;
  const counter = adopt(
    registry,
    new Counter({
      name: 'sluice_unexpected_errors_total',
      help: 'Unhandled rejections and uncaught exceptions caught by the process guard (the process kept running).',
      labelNames: ['kind'],
      registers: [],
    }),
  );
  const report = (kind: UnexpectedKind, reason: unknown) => {
    counter.inc({ kind });
    try {
      log().error({ kind, ...describe(reason) }, 'unexpected error caught by the process guard; continuing');
    } catch {
      process.stderr.write(`sluice: ${kind}: ${describe(reason).err}\n`);
    }
  };
  process.on('unhandledRejection', (reason) => report('unhandledRejection', reason));
  process.on('uncaughtException', (err) => report('uncaughtException', err));
}
