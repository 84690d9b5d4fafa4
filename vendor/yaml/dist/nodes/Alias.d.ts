import type { Document } from '../doc/Document.d.ts';
import type { FlowScalar } from '../parse/cst.d.ts';
import type { StringifyContext } from '../stringify/stringify.d.ts';
import type { Range } from './Node.d.ts';
import { NodeBase } from './Node.d.ts';
import type { Scalar } from './Scalar.d.ts';
import type { ToJSContext } from './toJS.d.ts';
import type { YAMLMap } from './YAMLMap.d.ts';
import type { YAMLSeq } from './YAMLSeq.d.ts';
export declare namespace Alias {
    interface Parsed extends Alias {
        range: Range;
        srcToken?: FlowScalar & {
            type: 'alias';
        };
    }
}
export declare class Alias extends NodeBase {
    source: string;
    anchor?: never;
    constructor(source: string);
    /**
     * Resolve the value of this alias within `doc`, finding the last
     * instance of the `source` anchor before this node.
     */
    resolve(doc: Document, ctx?: ToJSContext): Scalar | YAMLMap | YAMLSeq | undefined;
    toJSON(_arg?: unknown, ctx?: ToJSContext): unknown;
    toString(ctx?: StringifyContext, _onComment?: () => void, _onChompKeep?: () => void): string;
}
