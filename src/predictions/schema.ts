import { z } from 'zod';
import { zIsoDateTime } from '../normalize';
import { PURCHASE_MODELS } from './btyd';

export const fitBody = z.strictObject({
  /** The moment the fit looks from: purchases after it are ignored; default now. */
  asOf: zIsoDateTime.optional(),
  timeUnit: z.enum(['day', 'week']).default('day'),
  model: z.enum(PURCHASE_MODELS).default('mbg-nbd'),
});
export type FitBody = z.infer<typeof fitBody>;

export const validateBody = z.strictObject({
  calibrationEnd: zIsoDateTime,
  /** End of the purchases holdout; default calibrationEnd + 90 days, at most now. */
  holdoutEnd: zIsoDateTime.optional(),
  timeUnit: z.enum(['day', 'week']).default('day'),
  model: z.enum(PURCHASE_MODELS).default('mbg-nbd'),
});
