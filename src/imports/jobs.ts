import { QUEUE_NAMES, type Queues } from '../queues';

export const IMPORT_JOB = 'import';

/**
 * One job per import, named by its id (adding it twice is a no-op). Its data is the id only. A
 * worker that dies mid-job leaves the job stalled; BullMQ hands it to another worker, which
 * resumes (src/imports/service.ts). Attempts cover crashes and a database that went away.
 */
export async function enqueueImport(queues: Queues, importId: string): Promise<void> {
  await queues.get(QUEUE_NAMES.imports).add(IMPORT_JOB, { importId }, { jobId: `import-${importId}`, attempts: 5, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: 1000, removeOnFail: 1000 });
}
