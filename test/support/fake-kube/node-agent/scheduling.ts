/**
 * The scheduler's part: one node, matched by nodeSelector only. Affinity, taints and resources
 * are not considered (tolerations are accepted and mean nothing: the node has no taints).
 */
import type { Pod } from '../pod-schema.js';

/** The default scheduler's words for a pod no node's labels fit. */
export const UNSCHEDULABLE_MESSAGE =
  "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";

export function fitsNode(pod: Pod, nodeLabels: Readonly<Record<string, string>>): boolean {
  return Object.entries(pod.spec.nodeSelector ?? {}).every(([key, value]) => nodeLabels[key] === value);
}
