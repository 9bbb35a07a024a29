import { z } from 'zod';

/**
 * The rule language of segments (API.md, Segments). The zod schema checks the shape of a tree;
 * what a field means and which ops/values it admits is checked by validate.ts against the
 * allow-list in fields.ts, so that an unknown field is a 422 naming its path.
 */
export const OPS = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'in', 'notIn', 'contains', 'exists', 'notExists', 'topPercent', 'bottomPercent'] as const;
export type Op = (typeof OPS)[number];

export const PRESET_NAMES = ['new', 'returning', 'active', 'atRisk', 'lapsed', 'vip', 'fading', 'likelyToChurn'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const MAX_DEPTH = 20;
export const MAX_NODES = 200;

/** Extension: compare a numeric field with another numeric field of the same customer, times a factor. */
export const fieldRef = z.strictObject({
  field: z.string().min(1).max(120),
  times: z.number().finite().min(-1e6).max(1e6).optional(),
});
export type FieldRef = z.infer<typeof fieldRef>;

export const condition = z.strictObject({
  field: z.string().min(1).max(120),
  op: z.enum(OPS),
  value: z.unknown().optional(),
});
export type Condition = { field: string; op: Op; value?: unknown };

const days = z.number().int().min(0).max(36500);
const label = z.string().min(1).max(200);

export const purchasedSpec = z.strictObject({
  category: label.optional(),
  brand: label.optional(),
  sku: label.optional(),
  withinDays: days.optional(),
  minCount: z.number().int().min(1).max(1e6).optional(),
  minSpent: z.number().finite().min(0).max(1e12).optional(),
});
export type PurchasedSpec = z.infer<typeof purchasedSpec>;

export const eventSpec = z.strictObject({
  type: label,
  withinDays: days.optional(),
  minCount: z.number().int().min(1).max(1e6).optional(),
  channel: label.optional(),
});
export type EventSpec = z.infer<typeof eventSpec>;

export type SegmentNode =
  | { all: SegmentNode[] }
  | { any: SegmentNode[] }
  | { not: SegmentNode }
  | Condition
  | { purchased: PurchasedSpec }
  | { event: EventSpec }
  | { preset: PresetName }
  | { segment: string };

/** The whole tree as one zod schema (for other domains' bodies and the OpenAPI document). */
export const segmentNode: z.ZodType<SegmentNode> = z.lazy(() =>
  z.union([
    z.strictObject({ all: z.array(segmentNode).max(MAX_NODES) }),
    z.strictObject({ any: z.array(segmentNode).max(MAX_NODES) }),
    z.strictObject({ not: segmentNode }),
    condition,
    z.strictObject({ purchased: purchasedSpec }),
    z.strictObject({ event: eventSpec }),
    z.strictObject({ preset: z.enum(PRESET_NAMES) }),
    z.strictObject({ segment: z.string().min(1).max(100) }),
  ]),
) as z.ZodType<SegmentNode>;

const name = z.string().trim().min(1).max(200);

/** POST /v1/segments: a live segment from a definition, or a static one from a list of external ids. */
export const createSegmentBody = z.union([
  z.strictObject({ name, definition: z.unknown() }),
  z.strictObject({ name, members: z.array(z.string().min(1).max(200)).max(100000) }),
]);

export const patchSegmentBody = z.strictObject({ name: name.optional(), definition: z.unknown().optional() });
export const previewBody = z.strictObject({ definition: z.unknown(), sampleSize: z.number().int().min(0).max(100).optional() });
export const snapshotBody = z.strictObject({ name: name.optional() });
export const csvQuery = z.object({ name });
