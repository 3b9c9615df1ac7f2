// Lints the OpenAPI document the server serves with Redocly's strict recommended rules (every
// warning an error), so what generated clients read stays complete: the lint step of the test
// command runs it. `node --conditions=runtime-sandbox-source --import tsx scripts/lint-openapi.ts`
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOpenApiDocument } from '../server/src/api/openapi.js';
import { packageRoot } from '../server/src/package-root.js';

const dir = mkdtempSync(join(tmpdir(), 'rsbx-openapi-'));
try {
  const document = join(dir, 'openapi.json');
  writeFileSync(document, JSON.stringify(buildOpenApiDocument(), null, 2));
  writeFileSync(join(dir, 'redocly.yaml'), 'extends:\n  - recommended-strict\n');
  const redocly = join(packageRoot(), 'node_modules', '.bin', 'redocly');
  execFileSync(redocly, ['lint', '--config', join(dir, 'redocly.yaml'), document], {
    stdio: 'inherit',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
