// The imports of each ES module named on the command line, as JSON {path: [specifier, ...]},
// read by es-module-lexer (the lexer bundlers use), so the PWA's import graph is the one a
// browser follows: static imports, re-exports and dynamic imports alike. A dynamic import
// whose name is not written out (import(x), a template) is listed as null: nobody can check
// or cache what it loads.
import { readFileSync } from 'node:fs';
import { init, parse } from 'es-module-lexer';

await init;
const graph = {};
for (const path of process.argv.slice(2)) {
  const [imports] = parse(readFileSync(path, 'utf8'), path);
  graph[path] = imports.filter((i) => i.type !== 'import-meta')
    .map((i) => (typeof i.specifier === 'string' && !i.glob ? i.specifier : null));
}
process.stdout.write(JSON.stringify(graph));
