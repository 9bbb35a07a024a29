/** Polls `fn` every 50 ms until it returns something truthy (that value), or fails naming `what` after `ms`. */
export async function until<T>(what: string, fn: () => T | Promise<T>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
