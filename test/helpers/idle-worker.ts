/** A worker thread that does nothing and ends (young-gen-child.ts starts it). */
export {};
