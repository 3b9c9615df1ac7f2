/**
 * The public surface for extension modules: `export default defineSandboxType({...})`, an array of
 * definitions, or `export default (api: ExtensionApi) => { api.registerSandboxType({...}) }`.
 */
export { defineSandboxType, type SandboxType, type SandboxTypeInput } from './sandbox-types/definition.js';
export type { ExtensionApi } from './sandbox-types/extensions.js';
