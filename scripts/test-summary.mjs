// Prints vitest's JSON reports (one per leg: Node 20, Node 24) as the plain closing line CI reads:
// "tests: N passed, N failed, N skipped", after one line per leg.
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
let empty = false;
for (const file of process.argv.slice(2)) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const legSkipped = report.numPendingTests + report.numTodoTests;
  console.log(
    `${file}: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${legSkipped} skipped`,
  );
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += legSkipped;
  empty ||= report.numTotalTests === 0;
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (failed > 0 || empty || skipped > 0) process.exit(1);
