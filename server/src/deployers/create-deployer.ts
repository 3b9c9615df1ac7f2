/**
 * The deployer CONTAINER_DEPLOYMENT (and on Kubernetes K8S_MODE) names; the config schema already
 * refused the ones not built yet.
 * Each is loaded only when chosen: the Kubernetes client alone takes most of a second to import.
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import type { Deployer, SharedBootTokens } from './deployer.js';

/** What some deployers need beside the settings: K8S_MODE=agent-sandbox's templates. */
export interface DeployerDeps {
  sharedBootTokens: SharedBootTokens;
  registry: Pick<SandboxTypeRegistry, 'imageFor'>;
}

export async function createDeployer(config: Config, logger: Logger, deps: DeployerDeps): Promise<Deployer> {
  switch (config.CONTAINER_DEPLOYMENT) {
    case 'docker': {
      const { DockerDeployer } = await import('./docker.js');
      return new DockerDeployer({ config, logger });
    }
    case 'k8s': {
      if (config.K8S_MODE === 'agent-sandbox') {
        const { AgentSandboxDeployer } = await import('./kubernetes-agent-sandbox.js');
        return new AgentSandboxDeployer({ config, logger, ...deps });
      }
      const { KubernetesDeployer } = await import('./kubernetes.js');
      return new KubernetesDeployer({ config, logger });
    }
    default:
      throw new Error(`CONTAINER_DEPLOYMENT=${config.CONTAINER_DEPLOYMENT} has no deployer yet`);
  }
}
