// Puts the figures of bench/results.json (a run of `npm run bench`) into README.md, between its
// bench-table markers: `node --import tsx scripts/bench-table.ts`. test/readme.test.ts fails when
// the two disagree, so a new reference run comes with its README figures.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchSection, withSection } from '../bench/readme-table.js';
import { readResults } from '../bench/results.js';
import { packageRoot } from '../server/src/package-root.js';

const readmeFile = join(packageRoot(), 'README.md');
const results = readResults();
writeFileSync(readmeFile, withSection(readFileSync(readmeFile, 'utf8'), benchSection(results)));
console.log(`README.md: the benchmark figures of the run started ${results.startedAt}`);
