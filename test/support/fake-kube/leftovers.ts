/**
 * What crashed runs left behind: containers and networks labelled by a fake-kube instance whose
 * process is no longer alive. Live instances' (other test files, other checkouts) are left alone.
 */
import Dockerode from 'dockerode';
import { FAKE_KUBE_LABEL, FAKE_KUBE_PID_LABEL, processAlive } from './docker-labels.js';

const orphaned = (labels: Record<string, string> | undefined) =>
  !processAlive(Number(labels?.[FAKE_KUBE_PID_LABEL] ?? Number.NaN));

/** Removes dead instances' containers, then their networks; resolves to how many of each went. */
export async function removeFakeKubeLeftovers(
  docker: Dockerode = new Dockerode(),
): Promise<{ containers: number; networks: number }> {
  const containers = (
    await docker.listContainers({ all: true, filters: { label: [FAKE_KUBE_LABEL] } })
  ).filter((c) => orphaned(c.Labels));
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  const networks = (await docker.listNetworks({ filters: { label: [FAKE_KUBE_LABEL] } })).filter((n) =>
    orphaned(n.Labels),
  );
  await Promise.all(
    networks.map((n) =>
      docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined),
    ),
  );
  return { containers: containers.length, networks: networks.length };
}
