/**
 * The node arguments that run repository TypeScript through tsx, with @runtime-sandbox/contract
 * resolved to its source (its `runtime-sandbox-source` export condition) rather than its build.
 */
export const TSX_ARGS = ['--conditions=runtime-sandbox-source', '--import', 'tsx'] as const;
