/** The deployer CONTAINER_DEPLOYMENT names; the config schema already refused the ones not built yet. */
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Deployer } from './deployer.js';
import { DockerDeployer } from './docker.js';

export function createDeployer(config: Config, logger: Logger): Deployer {
  switch (config.CONTAINER_DEPLOYMENT) {
    case 'docker':
      return new DockerDeployer({ config, logger });
    default:
      throw new Error(`CONTAINER_DEPLOYMENT=${config.CONTAINER_DEPLOYMENT} has no deployer yet`);
  }
}
