import type { Handler } from '../context.js';
import type { OperationId } from '../routes.js';

/** One handler per operation of the route table. */
export type Handlers = Record<OperationId, Handler>;
