import type { Knex } from 'knex';

/**
 * What other domains must blank when a customer is erased, run by eraseCustomer in its
 * transaction, before the customer row goes (the customer's messages still carry customer_id).
 * A module of its own, importing nothing, so that any domain can register without a cycle.
 */
export type ErasureHook = (trx: Knex.Transaction, workspaceId: string, customerId: string) => Promise<void>;

const hooks: ErasureHook[] = [];

export const onErasure = (hook: ErasureHook): void => {
  if (!hooks.includes(hook)) hooks.push(hook);
};

export async function runErasureHooks(trx: Knex.Transaction, workspaceId: string, customerId: string): Promise<void> {
  for (const hook of hooks) await hook(trx, workspaceId, customerId);
}
