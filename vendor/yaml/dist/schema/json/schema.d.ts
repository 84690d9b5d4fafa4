import type { CollectionTag, ScalarTag } from '../types.d.ts';
export declare const schema: (CollectionTag | ScalarTag)[];
