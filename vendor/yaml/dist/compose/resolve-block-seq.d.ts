import { YAMLSeq } from '../nodes/YAMLSeq.d.ts';
import type { BlockSequence } from '../parse/cst.d.ts';
import type { CollectionTag } from '../schema/types.d.ts';
import type { ComposeContext, ComposeNode } from './compose-node.d.ts';
import type { ComposeErrorHandler } from './composer.d.ts';
export declare function resolveBlockSeq({ composeNode, composeEmptyNode }: ComposeNode, ctx: ComposeContext, bs: BlockSequence, onError: ComposeErrorHandler, tag?: CollectionTag): YAMLSeq.Parsed;
