import { YAMLMap } from '../nodes/YAMLMap.d.ts';
import type { BlockMap } from '../parse/cst.d.ts';
import type { CollectionTag } from '../schema/types.d.ts';
import type { ComposeContext, ComposeNode } from './compose-node.d.ts';
import type { ComposeErrorHandler } from './composer.d.ts';
export declare function resolveBlockMap({ composeNode, composeEmptyNode }: ComposeNode, ctx: ComposeContext, bm: BlockMap, onError: ComposeErrorHandler, tag?: CollectionTag): YAMLMap.Parsed;
