import type { Knex } from 'knex';

/**
 * Segment counts over customer_stats alone (src/segments/count.ts) also for rules on the profile
 * fields segments filter by most: customer_stats carries copies of the customer's birth_date,
 * country, email_consent, sms_consent and gender, kept by two triggers whatever writes them
 * (API, batch, import, connectors; erasure deletes both rows):
 * - customer_stats_profile_fill: a new stats row takes them from its customer;
 * - customers_profile_sync: an update changing one of them writes it to the stats row.
 * A count of a stack such as "age 30-60, country in (US, GB, DE), email subscribed, 3+ purchases,
 * spent > 500" was a hash join of a 1M-row scan of customers with one of customer_stats (held
 * 300 ms only with both cores); it is now one index-only range scan of customer_stats_ws_spent,
 * which also carries customer_id (the "purchased category" semi-join reads it there).
 * The copies change only with the profile, so the stats update of every purchase costs only the
 * wider index entry (its update was never HOT: total_spent is indexed).
 */
const COLS = ['birth_date', 'country', 'email_consent', 'sms_consent', 'gender'];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    `ALTER TABLE customer_stats ADD COLUMN birth_date date, ADD COLUMN country char(2), ADD COLUMN email_consent text,
       ADD COLUMN sms_consent text, ADD COLUMN gender text`,
  );
  await knex.raw(`UPDATE customer_stats s SET ${COLS.map((c) => `${c} = c.${c}`).join(', ')} FROM customers c WHERE c.id = s.customer_id`);
  await knex.raw(`
    CREATE FUNCTION hark_stats_profile_fill() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      SELECT ${COLS.map((c) => `c.${c}`).join(', ')} INTO ${COLS.map((c) => `NEW.${c}`).join(', ')}
        FROM customers c WHERE c.id = NEW.customer_id;
      RETURN NEW;
    END $$`);
  await knex.raw('CREATE TRIGGER customer_stats_profile_fill BEFORE INSERT ON customer_stats FOR EACH ROW EXECUTE FUNCTION hark_stats_profile_fill()');
  await knex.raw(`
    CREATE FUNCTION hark_customer_profile_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE customer_stats SET ${COLS.map((c) => `${c} = NEW.${c}`).join(', ')} WHERE customer_id = NEW.id;
      RETURN NULL;
    END $$`);
  await knex.raw(
    `CREATE TRIGGER customers_profile_sync AFTER UPDATE OF ${COLS.join(', ')} ON customers FOR EACH ROW
       WHEN (${COLS.map((c) => `OLD.${c} IS DISTINCT FROM NEW.${c}`).join(' OR ')}) EXECUTE FUNCTION hark_customer_profile_sync()`,
  );
  await knex.raw('DROP INDEX IF EXISTS customer_stats_ws_spent');
  await knex.raw(`CREATE INDEX customer_stats_ws_spent ON customer_stats (workspace_id, total_spent) INCLUDE (purchase_count, customer_id, ${COLS.join(', ')})`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS customer_stats_ws_spent');
  await knex.raw('CREATE INDEX customer_stats_ws_spent ON customer_stats (workspace_id, total_spent) INCLUDE (purchase_count)');
  await knex.raw('DROP TRIGGER IF EXISTS customers_profile_sync ON customers');
  await knex.raw('DROP FUNCTION IF EXISTS hark_customer_profile_sync()');
  await knex.raw('DROP TRIGGER IF EXISTS customer_stats_profile_fill ON customer_stats');
  await knex.raw('DROP FUNCTION IF EXISTS hark_stats_profile_fill()');
  await knex.raw(`ALTER TABLE customer_stats ${COLS.map((c) => `DROP COLUMN ${c}`).join(', ')}`);
}
