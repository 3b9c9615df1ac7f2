/**
 * TLS for the fake's HTTPS mode: a certificate authority made at start and a server certificate
 * it signs for 127.0.0.1 (an IP SAN), by the openssl CLI, in a folder the caller removes. Without
 * openssl it fails, naming it: nothing is installed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TlsMaterial {
  /** The CA's certificate (PEM), for a client's trust. */
  caPem: string;
  /** The server's certificate and key (PEM). */
  certPem: string;
  keyPem: string;
}

/** EC P-256 keys: quick to make; a day's validity is plenty for a test run. */
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function makeTlsMaterial(dir: string, name = 'fake-kube'): TlsMaterial {
  const file = (suffix: string) => join(dir, `${name}-${suffix}`);
  const openssl = (args: string[]) => {
    try {
      execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(
        `fake-kube's TLS mode needs the openssl CLI, and openssl ${args[0]} failed: ${stderr || String(error)}`,
      );
    }
  };
  openssl([
    'req',
    '-x509',
    ...KEY,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '1',
    '-subj',
    `/CN=${name} test CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  openssl([
    'req',
    '-new',
    ...KEY,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-subj',
    `/CN=${name}`,
  ]);
  writeFileSync(
    file('server.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  openssl([
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.crt'),
    '-days',
    '1',
    '-extfile',
    file('server.ext'),
  ]);
  return {
    caPem: readFileSync(file('ca.crt'), 'utf8'),
    certPem: readFileSync(file('server.crt'), 'utf8'),
    keyPem: readFileSync(file('server.key'), 'utf8'),
  };
}
