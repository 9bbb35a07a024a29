import { Worker } from 'bullmq';

/**
 * A BullMQ worker that also owns timers or connections beside its jobs: `cleanup` runs after
 * BullMQ has let the running jobs finish, so a timer never fires into a closed pool.
 */
export class ClosableWorker extends Worker {
  cleanup: () => Promise<void> = async () => {};
  override async close(force?: boolean): Promise<void> {
    await super.close(force);
    await this.cleanup();
  }
}
