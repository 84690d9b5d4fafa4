import type { Pair } from '../nodes/Pair.d.ts';
import type { StringifyContext } from './stringify.d.ts';
export declare function stringifyPair({ key, value }: Readonly<Pair>, ctx: StringifyContext, onComment?: () => void, onChompKeep?: () => void): string;
