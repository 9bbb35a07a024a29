import { z } from 'zod';

/** Bounds of a rule's points: a score stays readable, and one rule cannot swamp the rest. */
export const MIN_POINTS = -100;
export const MAX_POINTS = 100;
export const MAX_RULES = 100;

/**
 * The request's shape only. Points out of range and the `when` tree are checked by the service,
 * so that they answer 422 naming the path (the rule is well-formed JSON but not acceptable).
 */
export const putScoringBody = z.strictObject({
  rules: z
    .array(
      z.strictObject({
        name: z.string().trim().min(1).max(200),
        points: z.number(),
        when: z.unknown(),
      }),
    )
    .max(MAX_RULES),
});
export type PutScoringBody = z.infer<typeof putScoringBody>;
