import type { ScalarTag } from '../types.d.ts';
export declare const binary: ScalarTag;
