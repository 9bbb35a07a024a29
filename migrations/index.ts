import type { Knex } from 'knex';
import * as m0001 from './0001_foundation';
import * as m0002 from './0002_messaging';
import * as m0003 from './0003_segments';
import * as m0005 from './0005_campaigns';
import * as m0006 from './0006_predictions';
import * as m0007 from './0007_results';
import * as m0008 from './0008_automations';
import * as m0009 from './0009_foundation_fixes';
import * as m0011 from './0011_outbox_indexes';
import * as m0012 from './0012_security';
import * as m0014 from './0014_inbox';
import * as m0017 from './0017_predictions_churn';
import * as m0016 from './0016_connectors';
import * as m0015 from './0015_imports';
import * as m0013 from './0013_reliability';
import * as m0018 from './0018_send_state';
import * as m0019 from './0019_segment_counts';
import * as m0020 from './0020_feed_freshness';
import * as m0021 from './0021_message_events_partitions';
import * as m0022 from './0022_messages_partitions';
import * as m0023 from './0023_stats_profile';

/**
 * Migrations are listed here rather than discovered on disk, so the same list runs from the
 * TypeScript sources (tests) and from the compiled build (production) without a loader.
 * Append new migrations at the end; never reorder or rename a released one.
 */
type Migration = { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> };

const migrations: Array<[string, Migration]> = [
  ['0001_foundation', m0001],
  ['0002_messaging', m0002],
  ['0003_segments', m0003],
  ['0005_campaigns', m0005],
  ['0006_predictions', m0006],
  ['0007_results', m0007],
  ['0008_automations', m0008],
  ['0009_foundation_fixes', m0009],
  ['0011_outbox_indexes', m0011],
  ['0012_security', m0012],
  ['0014_inbox', m0014],
  ['0017_predictions_churn', m0017],
  ['0016_connectors', m0016],
  ['0015_imports', m0015],
  ['0013_reliability', m0013],
  ['0018_send_state', m0018],
  ['0019_segment_counts', m0019],
  ['0020_feed_freshness', m0020],
  ['0021_message_events_partitions', m0021],
  ['0022_messages_partitions', m0022],
  ['0023_stats_profile', m0023],
];

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => migrations.map(([name]) => name),
  getMigrationName: (name) => name,
  getMigration: async (name) => {
    const found = migrations.find(([n]) => n === name);
    if (!found) throw new Error(`unknown migration ${name}`);
    return found[1];
  },
};
