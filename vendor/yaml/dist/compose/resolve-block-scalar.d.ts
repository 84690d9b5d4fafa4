import type { Range } from '../nodes/Node.d.ts';
import { Scalar } from '../nodes/Scalar.d.ts';
import type { BlockScalar } from '../parse/cst.d.ts';
import type { ComposeContext } from './compose-node.d.ts';
import type { ComposeErrorHandler } from './composer.d.ts';
export declare function resolveBlockScalar(ctx: ComposeContext, scalar: BlockScalar, onError: ComposeErrorHandler): {
    value: string;
    type: Scalar.BLOCK_FOLDED | Scalar.BLOCK_LITERAL | null;
    comment: string;
    range: Range;
};
