import { Worker } from 'bullmq';

/**
 * A BullMQ worker that also owns timers or connections beside its jobs: `beforeClose` runs as soon
 * as close() is called, `cleanup` after BullMQ has let the running jobs finish, so a timer never
 * fires into a closed pool.
 */
export class ClosableWorker extends Worker {
  /** Runs first, as close() begins: tells running jobs to wind down (BullMQ only waits for them). */
  beforeClose: () => void = () => {};
  cleanup: () => Promise<void> = async () => {};
  override async close(force?: boolean): Promise<void> {
    this.beforeClose();
    await super.close(force);
    await this.cleanup();
  }
}
