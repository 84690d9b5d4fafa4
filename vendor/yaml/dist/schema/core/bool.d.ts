import type { ScalarTag } from '../types.d.ts';
export declare const boolTag: ScalarTag & {
    test: RegExp;
};
