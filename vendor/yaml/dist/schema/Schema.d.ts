import { MAP, SCALAR, SEQ } from '../nodes/identity.d.ts';
import type { Pair } from '../nodes/Pair.d.ts';
import type { SchemaOptions, ToStringOptions } from '../options.d.ts';
import type { CollectionTag, ScalarTag } from './types.d.ts';
export declare class Schema {
    compat: Array<CollectionTag | ScalarTag> | null;
    knownTags: Record<string, CollectionTag | ScalarTag>;
    name: string;
    sortMapEntries: ((a: Pair, b: Pair) => number) | null;
    tags: Array<CollectionTag | ScalarTag>;
    toStringOptions: Readonly<ToStringOptions> | null;
    readonly [MAP]: CollectionTag;
    readonly [SCALAR]: ScalarTag;
    readonly [SEQ]: CollectionTag;
    constructor({ compat, customTags, merge, resolveKnownTags, schema, sortMapEntries, toStringDefaults }: SchemaOptions);
    clone(): Schema;
}
