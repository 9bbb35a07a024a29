import { z } from 'zod';
import { zIsoDateTime } from '../normalize';

export const fitBody = z.strictObject({
  /** The moment the fit looks from: purchases after it are ignored; default now. */
  asOf: zIsoDateTime.optional(),
  timeUnit: z.enum(['day', 'week']).default('day'),
});
export type FitBody = z.infer<typeof fitBody>;
