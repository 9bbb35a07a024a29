/**
 * Group calls made while a group is being served into the next one (the purchase group committer's
 * pattern, src/purchases/coalesce.ts): each group costs a statement and a commit whatever its size,
 * so the busier the server, the larger the groups. `fn` answers a group in order; a failure of the
 * group fails each call in it.
 */
export function batcher<A, R>(fn: (args: A[]) => Promise<R[]>, opts: { max?: number; inFlight?: number } = {}) {
  const max = opts.max ?? 500;
  const limit = opts.inFlight ?? 2;
  const waiting: Array<{ a: A; resolve(r: R): void; reject(e: unknown): void }> = [];
  let inFlight = 0;
  let scheduled = false;

  const pump = () => {
    scheduled = false;
    while (waiting.length && inFlight < limit) {
      const group = waiting.splice(0, max);
      inFlight++;
      fn(group.map((w) => w.a))
        .then(
          (rs) => group.forEach((w, i) => w.resolve(rs[i]!)),
          (err: unknown) => group.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };

  return (a: A): Promise<R> =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ a, resolve, reject });
      // Calls made in the same turn of the event loop join one group.
      if (!scheduled && inFlight < limit) {
        scheduled = true;
        setImmediate(pump);
      }
    });
}
