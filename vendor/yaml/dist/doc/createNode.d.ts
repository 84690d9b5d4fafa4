import type { Node } from '../nodes/Node.d.ts';
import type { Schema } from '../schema/Schema.d.ts';
import type { CollectionTag, ScalarTag } from '../schema/types.d.ts';
import type { Replacer } from './Document.d.ts';
export interface CreateNodeContext {
    aliasDuplicateObjects: boolean;
    keepUndefined: boolean;
    onAnchor: (source: unknown) => string;
    onTagObj?: (tagObj: ScalarTag | CollectionTag) => void;
    sourceObjects: Map<unknown, {
        anchor: string | null;
        node: Node | null;
    }>;
    replacer?: Replacer;
    schema: Schema;
}
export declare function createNode(value: unknown, tagName: string | undefined, ctx: CreateNodeContext): Node;
