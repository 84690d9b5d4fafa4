import { Pair } from '../../nodes/Pair.d.ts';
import type { Scalar } from '../../nodes/Scalar.d.ts';
import type { ToJSContext } from '../../nodes/toJS.d.ts';
import { YAMLMap } from '../../nodes/YAMLMap.d.ts';
import type { Schema } from '../../schema/Schema.d.ts';
import type { StringifyContext } from '../../stringify/stringify.d.ts';
import type { CreateNodeContext } from '../../util.d.ts';
import type { CollectionTag } from '../types.d.ts';
export declare class YAMLSet<T = unknown> extends YAMLMap<T, Scalar<null> | null> {
    static tag: string;
    constructor(schema?: Schema);
    add(key: T | Pair<T, Scalar<null> | null> | {
        key: T;
        value: Scalar<null> | null;
    }): void;
    /**
     * If `keepPair` is `true`, returns the Pair matching `key`.
     * Otherwise, returns the value of that Pair's key.
     */
    get(key: unknown, keepPair?: boolean): any;
    set(key: T, value: boolean): void;
    /** @deprecated Will throw; `value` must be boolean */
    set(key: T, value: null): void;
    toJSON(_?: unknown, ctx?: ToJSContext): any;
    toString(ctx?: StringifyContext, onComment?: () => void, onChompKeep?: () => void): string;
    static from(schema: Schema, iterable: unknown, ctx: CreateNodeContext): YAMLSet;
}
export declare const set: CollectionTag;
