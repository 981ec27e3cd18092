// Parse an AsyncAPI document with the official parser; print every diagnostic and exit 1
// on any error (severity 0). Usage: node check-asyncapi.mjs docs/asyncapi.yaml
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const file = process.argv[2];
const { document, diagnostics } = await new Parser().parse(readFileSync(file, 'utf8'));
const names = ['error', 'warning', 'info', 'hint'];
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  console.log(`${file}: ${names[d.severity]} ${d.code}: ${d.message} at ${d.path.join('.')}`);
}
if (!document || errors.length > 0) {
  console.log(`${file}: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()}`);
