import { MemoryStateStore } from '../../server/src/state/memory.js';
import { describeStateStoreContract } from './state-store-contract.js';

describeStateStoreContract(
  'memory',
  async () => new MemoryStateStore(),
  (store) => store.close(),
);
