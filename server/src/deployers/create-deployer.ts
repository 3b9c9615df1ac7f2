/**
 * The deployer CONTAINER_DEPLOYMENT names; the config schema already refused the ones not built yet.
 * Each is loaded only when chosen: the Kubernetes client alone takes most of a second to import.
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Deployer } from './deployer.js';

export async function createDeployer(config: Config, logger: Logger): Promise<Deployer> {
  switch (config.CONTAINER_DEPLOYMENT) {
    case 'docker': {
      const { DockerDeployer } = await import('./docker.js');
      return new DockerDeployer({ config, logger });
    }
    case 'k8s': {
      const { KubernetesDeployer } = await import('./kubernetes.js');
      return new KubernetesDeployer({ config, logger });
    }
    default:
      throw new Error(`CONTAINER_DEPLOYMENT=${config.CONTAINER_DEPLOYMENT} has no deployer yet`);
  }
}
