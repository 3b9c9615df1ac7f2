/** Why an image could not be made: a message fit to print as it is, without a stack trace. */
export class ImageBuildError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ImageBuildError';
  }
}

export { messageOf } from '../errors.js';
