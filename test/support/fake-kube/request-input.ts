/** Reading a request's JSON body and query parameters the way the apiserver's decoders do. */
import { badRequest } from './api-status.js';

/** JSON.parse of a request body; the decoder's 400 when it is missing or not JSON. */
export function parseJsonBody(body: Buffer | undefined): unknown {
  if (body === undefined) {
    throw badRequest(
      'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf',
    );
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw badRequest(
      `couldn't get version/kind; json parse error: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** A boolean query parameter (`watch=true`, `watch=1`). */
export function queryFlag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value === 'true' || value === '1';
}

/** An integer query parameter; 400 when it is not one. */
export function queryInt(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  if (value === null || value === '') return undefined;
  if (!/^-?[0-9]+$/.test(value)) throw badRequest(`invalid value for ${name}: ${JSON.stringify(value)}`);
  return Number(value);
}
