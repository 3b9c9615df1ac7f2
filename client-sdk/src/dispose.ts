/**
 * `Symbol.asyncDispose`, which `await using` calls, is missing in some runtimes (older Node 20 lines,
 * some browsers). TypeScript's emitted code looks it up on `Symbol`, so define it there when absent,
 * with the registered symbol Node itself uses, so every copy of this SDK agrees on it.
 */
const symbolConstructor = Symbol as unknown as { asyncDispose?: symbol };

if (typeof symbolConstructor.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', {
    value: Symbol.for('nodejs.asyncDispose'),
    writable: false,
    enumerable: false,
    configurable: false,
  });
}
