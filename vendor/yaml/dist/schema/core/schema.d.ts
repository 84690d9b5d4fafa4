export declare const schema: (import('../types.d.ts').CollectionTag | import('../types.d.ts').ScalarTag)[];
