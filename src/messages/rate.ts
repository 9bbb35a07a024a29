import { performance } from 'node:perf_hooks';
import type { RedisClient } from '../redis';

/**
 * GCRA with no burst, in one script on one key per channel (so it runs on any node of a Redis
 * Cluster): the key holds the theoretical arrival time (TAT, µs on the Redis clock) of the next
 * free send instant; reserving n instants moves it n/rate on. ARGV: n, the spacing in µs, and how
 * far ahead (µs) the first instant may lie (-1: any). Answers {1, µs until the first instant} when
 * reserved, {0, µs to wait before asking again} when the schedule is further ahead than that.
 * The Redis clock alone decides: worker hosts' clocks never meet.
 */
const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n, interval, ahead = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if ahead >= 0 and tat - now > ahead then return {0, math.ceil(tat - now - ahead)} end
local last = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.0f', last), 'PX', math.ceil((last - now) / 1000) + 1000)
return {1, math.floor(tat - now)}
`;

/**
 * How far ahead of its first send instant a chunk's tokens are granted (take): the claim, the
 * rules and the render happen in that lead, while the rows of a chunk still waiting for tokens
 * stay 'queued' (a crash leaves them to be sent, not 'unknown').
 */
export const GRANT_LEAD_MS = 250;
/**
 * A send instant this far behind when its message is ready (a busy event loop, a slow claim) is
 * not used: sending on it would put it beside the next instants and exceed the ceiling in that
 * second. The message takes a fresh instant instead. Bounds what the sender adds to any second at
 * the provider to rate x LATE_MS/1000 (2%).
 */
export const LATE_MS = 20;

/** The longest the other sends wait for a process's first send on a channel (see pace). */
export const FIRST_SEND_MS = 2000;

type Gcra = (key: string, n: number, intervalUs: number, aheadUs: number) => Promise<[number, number]>;

/**
 * Per-channel messages-per-second ceiling shared by every worker process: sends are spaced
 * 1/rate apart across all of them (a leaky bucket as GCRA in Redis), so every second at the
 * provider gets at most the rate, not a second's tokens at once. take(n) reserves n evenly spaced
 * send instants before a chunk is claimed; pace() makes each send wait for this process's next
 * reserved instant right before the message goes to the provider.
 */
export class RateLimiter {
  /** This process's reserved send instants per channel (performance.now() ms), ascending. */
  private readonly instants = new Map<string, number[]>();
  /** Per channel: opened once this process's first send on it has finished (see pace). */
  private readonly firstSend = new Map<string, { opened: Promise<void>; open(): void; isOpen: boolean }>();
  private readonly gcra: Gcra;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly perSecond: Record<string, number>,
  ) {
    const r = redis as unknown as Record<string, unknown> & { defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void };
    if (typeof r.harkGcra !== 'function') r.defineCommand('harkGcra', { numberOfKeys: 1, lua: GCRA });
    this.gcra = (...a) => (r.harkGcra as (...x: unknown[]) => Promise<[number, number]>)(...a);
  }

  private interval(channel: string): number {
    return 1e6 / Math.max(1e-3, this.perSecond[channel] ?? 1);
  }

  /** Reserves n instants: true and kept in `instants`, or the ms to wait (the schedule is further ahead than aheadMs). */
  private async reserve(channel: string, n: number, aheadMs: number): Promise<true | number> {
    const interval = this.interval(channel);
    const [ok, us] = await this.gcra(`${this.prefix}:rate:${channel}`, n, interval, aheadMs < 0 ? -1 : Math.round(aheadMs * 1000));
    if (!ok) return Math.max(1, us / 1000);
    const first = performance.now() + us / 1000;
    const list = this.instants.get(channel) ?? [];
    for (let i = 0; i < n; i++) list.push(first + (i * interval) / 1000);
    list.sort((a, b) => a - b);
    this.instants.set(channel, list);
    return true;
  }

  /**
   * Reserves n send instants for `channel`, returning once the first is at most GRANT_LEAD_MS
   * ahead. `signal`: a shutdown; the wait ends with an error instead of running on.
   */
  async take(channel: string, n: number, signal?: AbortSignal): Promise<void> {
    const most = Math.max(1, Math.floor(this.perSecond[channel] ?? 1));
    let left = n;
    while (left > 0) {
      signal?.throwIfAborted();
      const want = Math.min(left, most);
      const r = await this.reserve(channel, want, GRANT_LEAD_MS);
      if (r === true) left -= want;
      else await sleep(r, signal);
    }
    signal?.throwIfAborted();
  }

  /**
   * Waits for this process's next reserved instant of `channel`, right before a send: true when
   * it is time, false when `signal` ended the wait (the message was not sent). An instant more
   * than LATE_MS past is dropped, and when none is left fresh ones are reserved (as many as were
   * dropped), so a send never goes without one.
   */
  async pace(channel: string, signal?: AbortSignal): Promise<boolean> {
    // A process's first send on a channel pays one-time costs after its instant (the first
    // provider connection, code compiled on first use): 100-500 ms on the test machine, during
    // which the next instants' sends would pile up behind it and then leave together. So the
    // first send goes alone, and the others take their instants once it has finished (sent()),
    // or after FIRST_SEND_MS at most.
    const gate = this.firstSend.get(channel);
    if (!gate) {
      let resolve = () => {};
      const opened = new Promise<void>((r) => (resolve = r));
      const g = { opened, isOpen: false, open: () => ((g.isOpen = true), clearTimeout(timer), resolve()) };
      const timer = setTimeout(g.open, FIRST_SEND_MS);
      timer.unref();
      this.firstSend.set(channel, g);
    } else if (!gate.isOpen) {
      await Promise.race([gate.opened, sleep(FIRST_SEND_MS, signal)]);
    }
    return this.next(channel, signal);
  }

  /** A send paced on `channel` has finished (whatever its outcome): the first one lets the others go (see pace). */
  sent(channel: string): void {
    this.firstSend.get(channel)?.open();
  }

  private async next(channel: string, signal?: AbortSignal): Promise<boolean> {
    let dropped = 0;
    for (;;) {
      if (signal?.aborted) return false;
      const list = this.instants.get(channel) ?? [];
      let now = performance.now();
      while (list.length && list[0]! < now - LATE_MS) {
        list.shift();
        dropped++;
      }
      const at = list.shift();
      if (at === undefined) {
        await this.reserve(channel, Math.max(1, dropped), -1);
        dropped = 0;
        continue;
      }
      // Timers fire in whole ms: an instant under 1 ms ahead is now.
      if (at - now >= 1) await sleep(at - now, signal);
      if (signal?.aborted) return false;
      now = performance.now();
      if (now - at <= LATE_MS) return true;
      dropped++; // the timer fired too late for this instant
    }
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
