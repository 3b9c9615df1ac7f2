/**
 * Isolation scopes: whose workspace a turn works in. The scope picks which id of the runtime
 * context names the workspace, and the workspace key (the snapshot key and the guard key) is made
 * from it. A scope whose id is missing is an error: falling back to a wider scope would hand one
 * user's files to another.
 */
import { ValidationError } from '../errors.js';

export const IsolationScope = {
  /** One workspace per conversation (`sessionId`). */
  SESSION: 'session',
  /** One workspace per end user, shared by that user's sessions (`userId`). */
  USER: 'user',
  /** One workspace per agent, shared by every user of it (`agentId`). */
  AGENT: 'agent',
  /** One workspace for everyone. */
  GLOBAL: 'global',
} as const;

export type IsolationScope = (typeof IsolationScope)[keyof typeof IsolationScope];

/** Who a turn runs for. Which ids are needed depends on the scope. */
export interface RuntimeContext {
  sessionId?: string | undefined;
  userId?: string | undefined;
  agentId?: string | undefined;
}

const ID_OF_SCOPE = {
  session: 'sessionId',
  user: 'userId',
  agent: 'agentId',
  global: undefined,
} as const satisfies Record<IsolationScope, keyof RuntimeContext | undefined>;

/** The longest key the server takes. */
const MAX_KEY_LENGTH = 256;

/**
 * The workspace key of a context under a scope: `<namespace>/<scope>/<id>`, e.g.
 * `harness/session/c-42`, or `<namespace>/global`. Ids are percent-encoded, so any id makes a key
 * of printable ASCII without spaces, which is what the server takes. Throws ValidationError when
 * the scope's id is missing or empty, or the key would be too long.
 */
export function scopeKey(scope: IsolationScope, context: RuntimeContext, namespace = 'harness'): string {
  if (!Object.hasOwn(ID_OF_SCOPE, scope)) {
    throw invalid(`unknown isolation scope ${JSON.stringify(scope)}`, { scope });
  }
  const field = ID_OF_SCOPE[scope];
  let key = `${encodeURIComponent(namespace)}/${scope}`;
  if (field !== undefined) {
    const id = context[field];
    if (typeof id !== 'string' || id === '') {
      throw invalid(`the ${scope.toUpperCase()} scope needs context.${field}, which is missing`, {
        scope,
        missing: field,
      });
    }
    key += `/${encodeURIComponent(id)}`;
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw invalid(`the workspace key is longer than ${MAX_KEY_LENGTH} characters`, { scope, key });
  }
  return key;
}

function invalid(message: string, details: Record<string, unknown>): ValidationError {
  return new ValidationError({ code: 'VALIDATION_ERROR', message, details });
}
