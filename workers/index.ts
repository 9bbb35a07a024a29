import type { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { startMaintenanceWorker } from './maintenance-worker';
import { startPredictionsWorker } from './predictions-worker';
import { startAutomationWorker } from './automation-worker';
import { startResultsWorker } from './results-worker';
import { startWebhookWorker } from './webhook-worker';
import { startDispatchWorker } from './dispatch-worker';
import { startCampaignWorker } from './campaign-worker';
import { startConnectorWorker } from './connector-worker';
import { startImportWorker } from './import-worker';

/** Starts every BullMQ worker of the `worker` role; each is a thin processor calling into src/. */
export async function startWorkers(deps: Deps): Promise<Worker[]> {
  return [await startMaintenanceWorker(deps), await startPredictionsWorker(deps), await startAutomationWorker(deps), await startResultsWorker(deps), await startWebhookWorker(deps), await startDispatchWorker(deps), await startCampaignWorker(deps), await startConnectorWorker(deps), await startImportWorker(deps)];
}

export async function closeWorkers(workers: Worker[]): Promise<void> {
  // close() waits for running jobs to finish.
  await Promise.all(workers.map((w) => w.close()));
}
