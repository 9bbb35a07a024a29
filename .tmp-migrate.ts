import { createDb, migrateLatest, migrateRollbackAll } from './src/db';
(async () => { const db = createDb(process.env.TEST_DATABASE_URL!, 2); const mode = process.argv[2];
  if (mode === 'cycle') { await migrateLatest(db); await migrateRollbackAll(db); }
  await migrateLatest(db); await db.destroy(); })().catch((e) => { console.error(e); process.exit(1); });
