import { setFlagsFromString } from 'node:v8';
import { heapGrowingPercent } from './config';

/**
 * Left to itself, V8 lets the old generation grow to up to 4x its live size before the next full
 * collection (it allows that much wherever the heap limit is large, i.e. on any machine with a few
 * GB), so a busy worker's RSS climbs far above what it holds. A small fixed factor bounds it
 * (issue 4: worker RSS < 300 MB) for little CPU, since full collections of a heap this size are short.
 * Imported first by main.ts: the limit V8 sets after each full collection is computed with the
 * factor then in force, so it must be set before boot loads hark's modules. Process-wide: the
 * sender thread's isolate follows it too.
 */
const percent = heapGrowingPercent();
if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
