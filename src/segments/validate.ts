import type { z } from 'zod';
import type { ErrorDetail } from '../errors';
import { OPS_BY_TYPE, resolveField } from './fields';
import { condition, eventSpec, fieldRef, MAX_DEPTH, MAX_NODES, Op, PRESET_NAMES, PresetName, purchasedSpec, SegmentNode } from './schema';

/**
 * Checks a rule tree without touching the database: shape, depth and size limits, fields
 * against the allow-list, ops against the field's type, values against the op. Every problem
 * is reported with its path. Segment references are collected for the caller to resolve.
 */
export interface Checked {
  node: SegmentNode | null;
  errors: ErrorDetail[];
  segmentRefs: Array<{ id: string; path: string }>;
}

type Path = (string | number)[];
const show = (p: Path) => p.map(String).join('.') || '(root)';
const KINDS = ['all', 'any', 'not', 'field', 'purchased', 'event', 'preset', 'segment'] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const FIELD_REF_OPS: readonly Op[] = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte'];
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkTree(raw: unknown, prefix: Path = []): Checked {
  const errors: ErrorDetail[] = [];
  const segmentRefs: Checked['segmentRefs'] = [];
  const err = (p: Path, message: string) => errors.push({ path: show(p), message });

  // Limits first, iteratively, so that a hostile 10,000-deep tree never reaches recursion.
  const stack: Array<{ v: unknown; p: Path; depth: number }> = [{ v: raw, p: prefix, depth: 1 }];
  let nodes = 0;
  while (stack.length) {
    const { v, p, depth } = stack.pop()!;
    nodes++;
    if (depth > MAX_DEPTH) return { node: null, errors: [{ path: show(p), message: `tree is deeper than ${MAX_DEPTH} levels` }], segmentRefs };
    if (nodes > MAX_NODES) return { node: null, errors: [{ path: show(p), message: `tree has more than ${MAX_NODES} nodes` }], segmentRefs };
    if (!isObj(v)) continue;
    for (const k of ['all', 'any'] as const) {
      if (Array.isArray(v[k])) (v[k] as unknown[]).forEach((c, i) => stack.push({ v: c, p: [...p, k, i], depth: depth + 1 }));
    }
    if ('not' in v) stack.push({ v: v.not, p: [...p, 'not'], depth: depth + 1 });
  }

  const zodInto = <T>(schema: z.ZodType<T>, v: unknown, p: Path): T | null => {
    const r = schema.safeParse(v);
    if (!r.success) for (const i of r.error.issues) err([...p, ...(i.path as Path)], i.message);
    return r.success ? r.data : null;
  };

  const parse = (v: unknown, p: Path): SegmentNode | null => {
    if (!isObj(v)) return err(p, 'must be a rule node (an object)'), null;
    const kinds = KINDS.filter((k) => k in v);
    if (kinds.length !== 1) {
      err(p, kinds.length ? `a node has exactly one of ${kinds.join(', ')}` : `unknown node: expected one of ${KINDS.join(', ')}`);
      return null;
    }
    const kind = kinds[0]!;
    const extra = Object.keys(v).filter((k) => k !== kind && !(kind === 'field' && (k === 'op' || k === 'value')));
    if (extra.length) return err([...p, extra[0]!], 'unknown key in this node'), null;
    switch (kind) {
      case 'all':
      case 'any': {
        const list = v[kind];
        if (!Array.isArray(list)) return err([...p, kind], 'must be an array of nodes'), null;
        const children = list.map((c, i) => parse(c, [...p, kind, i]));
        return children.every(Boolean) ? ({ [kind]: children } as SegmentNode) : null;
      }
      case 'not': {
        const inner = parse(v.not, [...p, 'not']);
        return inner && { not: inner };
      }
      case 'field':
        return checkCondition(v, p);
      case 'purchased': {
        const spec = zodInto(purchasedSpec, v.purchased, [...p, 'purchased']);
        return spec && { purchased: spec };
      }
      case 'event': {
        const spec = zodInto(eventSpec, v.event, [...p, 'event']);
        return spec && { event: spec };
      }
      case 'preset':
        if (!(PRESET_NAMES as readonly unknown[]).includes(v.preset)) return err([...p, 'preset'], `unknown preset (one of ${PRESET_NAMES.join(', ')})`), null;
        return { preset: v.preset as PresetName };
      case 'segment':
        if (typeof v.segment !== 'string' || !UUID.test(v.segment)) return err([...p, 'segment'], 'unknown segment'), null;
        segmentRefs.push({ id: v.segment.toLowerCase(), path: show([...p, 'segment']) });
        return { segment: v.segment.toLowerCase() };
    }
  };

  const checkCondition = (v: Record<string, unknown>, p: Path): SegmentNode | null => {
    const c = zodInto(condition, v, p) as { field: string; op: Op; value?: unknown } | null;
    if (!c) return null;
    const f = resolveField(c.field);
    if (!f) return err([...p, 'field'], `unknown field ${JSON.stringify(c.field.slice(0, 60))} (see GET /v1/segments/fields)`), null;
    const type = f.attribute ? 'attribute' : f.def.type;
    if (!OPS_BY_TYPE[type].includes(c.op)) {
      return err([...p, 'op'], `op ${c.op} is not allowed for a ${type} field (allowed: ${OPS_BY_TYPE[type].join(', ')})`), null;
    }
    const vp = [...p, 'value'];
    const max = f.attribute ? 1e12 : f.def.max;
    const num = (x: unknown, at: Path) => {
      if (typeof x !== 'number' || !Number.isFinite(x)) return err(at, 'must be a number'), false;
      if (Math.abs(x) > max) return err(at, `must be between -${max} and ${max}`), false;
      return true;
    };
    const str = (x: unknown, at: Path) => (typeof x === 'string' && x.length <= 1000 ? true : (err(at, 'must be a string of at most 1000 characters'), false));
    const scalar = (x: unknown, at: Path) => {
      if (type === 'string') return str(x, at);
      if (type === 'number') return num(x, at);
      if (typeof x === 'boolean') return true;
      return typeof x === 'number' ? num(x, at) : str(x, at);
    };
    const value = c.value;
    let ok = true;
    switch (c.op) {
      case 'exists':
      case 'notExists':
        if (value !== undefined && value !== null) ok = (err(vp, `${c.op} takes no value`), false);
        return ok ? { field: c.field, op: c.op } : null;
      case 'eq':
      case 'neq':
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        if (isObj(value)) ok = checkFieldRef(value, vp, type, c.op);
        else if (value === undefined) ok = (err(vp, 'is required'), false);
        else ok = c.op === 'eq' || c.op === 'neq' ? scalar(value, vp) : num(value, vp);
        break;
      case 'between':
        if (!Array.isArray(value) || value.length !== 2) ok = (err(vp, 'must be [low, high]'), false);
        else if ((ok = num(value[0], [...vp, 0]) && num(value[1], [...vp, 1])) && value[0] > value[1]) ok = (err(vp, 'low must not exceed high'), false);
        break;
      case 'in':
      case 'notIn':
        if (!Array.isArray(value) || value.length < 1 || value.length > 1000) ok = (err(vp, 'must be an array of 1 to 1000 values'), false);
        else ok = value.map((x, i) => scalar(x, [...vp, i])).every(Boolean);
        break;
      case 'contains':
        ok = str(value, vp) && ((value as string).length > 0 || (err(vp, 'must not be empty'), false));
        break;
      case 'topPercent':
      case 'bottomPercent':
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) ok = (err(vp, 'must be a number from 0 to 100'), false);
        break;
    }
    return ok ? { field: c.field, op: c.op, value } : null;
  };

  const checkFieldRef = (v: Record<string, unknown>, p: Path, type: string, op: Op): boolean => {
    const ref = zodInto(fieldRef, v, p);
    if (!ref) return false;
    if (type !== 'number' || !FIELD_REF_OPS.includes(op)) return err(p, `a field reference is allowed only with ${FIELD_REF_OPS.join(', ')} on numeric fields`), false;
    const target = resolveField(ref.field);
    if (!target || target.attribute || target.def.type !== 'number') return err([...p, 'field'], 'must name a numeric field'), false;
    return true;
  };

  const node = parse(raw, prefix);
  return { node: errors.length ? null : node, errors, segmentRefs };
}
