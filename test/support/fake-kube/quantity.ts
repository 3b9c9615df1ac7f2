/**
 * resource.Quantity as numbers: "500m" CPUs, "512Mi" bytes, "1e3", "2". Only what the fake needs:
 * parse, compare and turn into Docker's units; quantities are stored as they were sent (no
 * canonical re-serialisation as the apiserver does).
 */

/** The syntax error message the apiserver's decoder gives for a bad quantity. */
export const QUANTITY_SYNTAX_ERROR =
  "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const QUANTITY = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** The quantity's value (cores, bytes, ...), or undefined when it is not a quantity. */
export function parseQuantity(raw: string | number): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  const match = QUANTITY.exec(raw.trim());
  if (!match) return undefined;
  const [, digits = '', suffix = ''] = match;
  const base = Number(digits);
  if (!Number.isFinite(base) || digits === '.' || (digits.match(/\./g)?.length ?? 0) > 1) return undefined;
  const binary = BINARY[suffix];
  if (binary !== undefined) return base * binary;
  const decimal = DECIMAL[suffix];
  if (decimal !== undefined) return base * decimal;
  const exponent = /^[eE]([-+]?[0-9]+)$/.exec(suffix);
  if (exponent?.[1] !== undefined) return base * 10 ** Number(exponent[1]);
  return undefined;
}
