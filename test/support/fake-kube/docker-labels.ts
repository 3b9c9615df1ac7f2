/** The Docker labels on everything a fake-kube instance creates, so stop() and leftover cleanup find it. */

/** Value: the instance id. */
export const FAKE_KUBE_LABEL = 'io.runtime-sandbox.fake-kube';
/** Value: the pid of the process running the instance, to tell a crashed run's leftovers from a live one's. */
export const FAKE_KUBE_PID_LABEL = 'io.runtime-sandbox.fake-kube.pid';

export function instanceLabels(instanceId: string): Record<string, string> {
  return { [FAKE_KUBE_LABEL]: instanceId, [FAKE_KUBE_PID_LABEL]: String(process.pid) };
}

/** Whether a process with this pid runs on this machine. */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
