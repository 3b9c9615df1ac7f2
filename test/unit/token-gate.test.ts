/**
 * TokenGate's rule for sandboxd requests: the token in SANDBOXD_AUTHORIZATION_HEADER when that
 * header is present (it alone is checked), else in `Authorization`; one try per request.
 */
import { SANDBOXD_AUTHORIZATION_HEADER } from '@runtime-sandbox/contract';
import { TokenGate } from '@runtime-sandbox/contract/token-gate';
import { describe, expect, it } from 'vitest';

const TOKEN = 'sandbox-token-0123456789abcdef';
const bearer = (token: string) => `Bearer ${token}`;

describe('TokenGate.admitsRequest', () => {
  const gate = new TokenGate(TOKEN);

  it('admits the token in Authorization when the dedicated header is absent', () => {
    expect(gate.admitsRequest({ authorization: bearer(TOKEN) })).toBe(true);
    expect(gate.admitsRequest({ authorization: bearer(`${TOKEN}x`) })).toBe(false);
    expect(gate.admitsRequest({})).toBe(false);
  });

  it('admits the token in the dedicated header, whatever Authorization holds (a proxy’s own)', () => {
    expect(gate.admitsRequest({ [SANDBOXD_AUTHORIZATION_HEADER]: bearer(TOKEN) })).toBe(true);
    expect(
      gate.admitsRequest({
        [SANDBOXD_AUTHORIZATION_HEADER]: bearer(TOKEN),
        authorization: 'Bearer kube-token',
      }),
    ).toBe(true);
  });

  it('checks the dedicated header alone when present: a right Authorization does not rescue a wrong one', () => {
    const headers = { [SANDBOXD_AUTHORIZATION_HEADER]: bearer('wrong'), authorization: bearer(TOKEN) };
    expect(gate.admitsRequest(headers)).toBe(false);
    expect(gate.admitsRequest({ [SANDBOXD_AUTHORIZATION_HEADER]: '', authorization: bearer(TOKEN) })).toBe(
      false,
    );
  });

  it('refuses malformed values: another scheme, two tokens joined, an array', () => {
    expect(gate.admitsRequest({ [SANDBOXD_AUTHORIZATION_HEADER]: `Basic ${TOKEN}` })).toBe(false);
    expect(gate.admitsRequest({ [SANDBOXD_AUTHORIZATION_HEADER]: `${bearer('x')}, ${bearer(TOKEN)}` })).toBe(
      false,
    );
    expect(gate.admitsRequest({ [SANDBOXD_AUTHORIZATION_HEADER]: [bearer(TOKEN), bearer(TOKEN)] })).toBe(
      false,
    );
  });

  it('follows a rotation in either header', () => {
    const rotating = new TokenGate(TOKEN);
    rotating.rotate('next-token-abcdef0123456789');
    expect(rotating.admitsRequest({ [SANDBOXD_AUTHORIZATION_HEADER]: bearer(TOKEN) })).toBe(false);
    expect(
      rotating.admitsRequest({ [SANDBOXD_AUTHORIZATION_HEADER]: bearer('next-token-abcdef0123456789') }),
    ).toBe(true);
    expect(rotating.admitsRequest({ authorization: bearer('next-token-abcdef0123456789') })).toBe(true);
  });
});
