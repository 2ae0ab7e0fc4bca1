// Publishes asked for in one event-loop iteration leave in one socket write. The NATS client
// writes what it has buffered once the current run of microtasks is over, so publishes started
// by separate I/O callbacks (one per webhook request) would cost a write (a syscall, ~15% of the
// EventSource's CPU under load) each; started together from one setImmediate callback (the check
// phase, right after the poll phase that read the requests) they share one. A publish waits at
// most until the check phase after the callback that asked for it. Only the start is deferred:
// what the publish confirms (and when the caller hears it) is unchanged.

type Task = () => void;

let queue: Task[] = [];
let scheduled = false;

function runTurn(): void {
  scheduled = false;
  const tasks = queue;
  queue = [];
  for (const t of tasks) t();
}

/**
 * Calls `start` in the check phase of this loop iteration, together with every other task asked
 * for before it, and settles as the promise `start` returns does (a synchronous throw rejects).
 */
export function inTurn<T>(start: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    queue.push(() => {
      try {
        start().then(resolve, reject);
      } catch (err) {
        reject(err);
      }
    });
    if (!scheduled) {
      scheduled = true;
      setImmediate(runTurn);
    }
  });
}
