// Validate FHIR R4 JSON with FHIR.js (npm `fhir`), which checks every element against the R4
// structure definitions it ships: types, cardinalities, required value sets, unknown elements.
// Usage: node tests/fhir_validate.js FILE...  Prints one JSON line per file: {file, valid, errors, warnings}.
const fs = require('fs');
const { Fhir } = require('fhir');

const fhir = new Fhir();
for (const file of process.argv.slice(2)) {
  const resource = JSON.parse(fs.readFileSync(file, 'utf8'));
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  const errors = result.messages.filter((m) => m.severity === 'error');
  const warnings = result.messages.filter((m) => m.severity !== 'error');
  console.log(JSON.stringify({ file, valid: result.valid, errors, warnings }));
}
