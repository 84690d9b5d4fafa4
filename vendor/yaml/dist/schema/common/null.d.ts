import type { ScalarTag } from '../types.d.ts';
export declare const nullTag: ScalarTag & {
    test: RegExp;
};
