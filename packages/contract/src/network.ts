/** What a sandbox may reach over the network, as sandbox types and acquires state it. */
import { z } from 'zod';

/**
 * `public`: the internet, but no other sandbox, no host address and no private, link-local or
 * metadata range. `allowlist`: only the `allow` ranges and domains (never what is blocked for
 * `public`). `none`: no network at all.
 */
export const networkPolicySchema = z.enum(['public', 'allowlist', 'none']);
export type NetworkPolicy = z.output<typeof networkPolicySchema>;

const IPV4_OR_CIDR = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)(\/(3[0-2]|[12]?\d))?$/;
/** A DNS name of two labels or more, optionally `*.` for every name below it. */
const DOMAIN_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * An allowlist entry: an IPv4 address or CIDR range (`203.0.113.10`, `198.51.100.0/24`; an address
 * becomes a /32), or a domain (`pypi.org`; `*.pythonhosted.org` for the names below it), which the
 * sandbox may resolve and then reach at the addresses it resolved to.
 */
export const allowEntrySchema = z
  .string()
  .max(253)
  .transform((entry) => entry.trim().toLowerCase())
  .refine(
    (entry) => IPV4_OR_CIDR.test(entry) || DOMAIN_PATTERN.test(entry),
    'an allowlist entry is an IPv4 address or CIDR (203.0.113.10, 198.51.100.0/24) or a domain (pypi.org, *.pythonhosted.org)',
  )
  .transform((entry) => (IPV4_OR_CIDR.test(entry) && !entry.includes('/') ? `${entry}/32` : entry));

/** Whether an allowlist entry is an address range (else it is a domain pattern). */
export function isAddressRange(entry: string): boolean {
  return IPV4_OR_CIDR.test(entry);
}
