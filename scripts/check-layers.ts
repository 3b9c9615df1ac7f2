// Checks that server/src imports one way: neither the graph of its files nor that of its folders
// ("folder A imports from folder B") has a cycle, and the API layer reaches the sandboxes only through the manager's named
// operations (never an adapter: deployers/ or the sandboxd client). The lint step runs it.
// `node --conditions=runtime-sandbox-source --import tsx scripts/check-layers.ts`
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { packageRoot } from '../server/src/package-root.js';

const root = join(packageRoot(), 'server', 'src');
/** Imports the API layer may not make: adapters are the manager's business. */
const API_FORBIDDEN = [join(root, 'deployers'), join(root, 'manager', 'sandboxd-client.ts')];

const files = readdirSync(root, { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.ts'))
  .map((file) => join(root, file));
const folderOf = (file: string) => relative(root, file).split(sep)[0] ?? '';

type Graph = Map<string, Set<string>>;
const addEdge = (graph: Graph, from: string, to: string) =>
  graph.set(from, (graph.get(from) ?? new Set()).add(to));
const edges: Graph = new Map();
const fileEdges: Graph = new Map();
const problems: string[] = [];
for (const file of files) {
  const from = folderOf(file);
  for (const [, specifier = ''] of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
    const target = resolve(dirname(file), specifier.replace(/\.js$/, '.ts'));
    if (!target.startsWith(root + sep)) continue;
    addEdge(fileEdges, relative(root, file), relative(root, target));
    const to = folderOf(target);
    // Files directly in server/src (app.ts, errors.ts, ...) are their own nodes.
    if (to !== from && !to.endsWith('.ts')) addEdge(edges, from, to);
    if (from === 'api' && API_FORBIDDEN.some((forbidden) => target.startsWith(forbidden))) {
      problems.push(
        `${relative(root, file)} imports ${relative(root, target)}: the API layer calls the manager`,
      );
    }
  }
}

/** Depth-first search for a cycle; returns it, or undefined. */
function findCycle(graph: Graph): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node];
    if (state.get(node) === 'done') return undefined;
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

const fileCycle = findCycle(fileEdges);
if (fileCycle) problems.push(`server/src files import in a cycle: ${fileCycle.join(' -> ')}`);
const folderCycle = findCycle(edges);
if (folderCycle) problems.push(`server/src folders import in a cycle: ${folderCycle.join(' -> ')}`);
for (const problem of problems) console.error(problem);
if (problems.length > 0) process.exit(1);
const graph = [...edges].map(([from, to]) => `${from} -> ${[...to].sort().join(', ')}`).sort();
console.log(`server/src layers: no cycle, API calls no adapter\n  ${graph.join('\n  ')}`);
