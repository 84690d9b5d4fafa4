import type { CollectionTag } from '../types.d.ts';
export declare const seq: CollectionTag;
