import { z } from 'zod';

export const GROUP_BYS = ['variant', 'segment', 'ageBand', 'city', 'gender', 'step'] as const;
export type GroupBy = (typeof GROUP_BYS)[number];

export const campaignReportQuery = z.strictObject({
  groupBy: z.enum(['variant', 'segment', 'ageBand', 'city', 'gender']).default('variant'),
});

/** Automations: a row per step by default; the snapshot groupings work there too. */
export const automationReportQuery = z.strictObject({
  groupBy: z.enum(GROUP_BYS).default('step'),
});
