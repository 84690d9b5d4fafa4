import type { Directives } from '../doc/directives.d.ts';
import { Document } from '../doc/Document.d.ts';
import type { ParsedNode } from '../nodes/Node.d.ts';
import type { DocumentOptions, ParseOptions, SchemaOptions } from '../options.d.ts';
import type * as CST from '../parse/cst.d.ts';
import type { ComposeErrorHandler } from './composer.d.ts';
export declare function composeDoc<Contents extends ParsedNode = ParsedNode, Strict extends boolean = true>(options: ParseOptions & DocumentOptions & SchemaOptions, directives: Directives, { offset, start, value, end }: CST.Document, onError: ComposeErrorHandler): Document.Parsed<Contents, Strict>;
