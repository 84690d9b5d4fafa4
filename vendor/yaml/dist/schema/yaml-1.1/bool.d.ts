import type { ScalarTag } from '../types.d.ts';
export declare const trueTag: ScalarTag & {
    test: RegExp;
};
export declare const falseTag: ScalarTag & {
    test: RegExp;
};
