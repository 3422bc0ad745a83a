// Rebuild tests/adapters/contracts/artifacts.json from the .sol sources beside this script with solcjs
// (npm `solc`, pinned in package.json), through the standard-JSON interface.
//
//   node tests/adapters/contracts/compile.mjs              # rewrite artifacts.json
//   node tests/adapters/contracts/compile.mjs --out FILE   # write elsewhere (the reproducibility test does this)
//
// The settings are part of the artifact, so a reader can tell exactly how the bytecode was produced.
import { createRequire } from "node:module";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = dirname(fileURLToPath(import.meta.url));
const outIndex = process.argv.indexOf("--out");
const out = outIndex >= 0 ? process.argv[outIndex + 1] : join(here, "artifacts.json");

const settings = {
  optimizer: { enabled: true, runs: 200 },
  // The compiler's default (osaka) is newer than some nodes support; shanghai runs everywhere.
  evmVersion: "shanghai",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};

const names = readdirSync(here).filter((f) => f.endsWith(".sol")).sort();
const sources = Object.fromEntries(names.map((f) => [f, { content: readFileSync(join(here, f), "utf8") }]));
const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings })));

const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
if (errors.length) process.exit(1);

const contracts = {};
for (const file of Object.keys(output.contracts).sort()) {
  for (const name of Object.keys(output.contracts[file]).sort()) {
    const c = output.contracts[file][name];
    if (!c.evm.bytecode.object) continue; // interfaces have no bytecode
    contracts[name] = { source: file, abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  }
}
const { outputSelection, ...recorded } = settings;
const artifact = { compiler: { name: "solc", version: solc.version() }, settings: recorded, contracts };
writeFileSync(out, JSON.stringify(artifact, null, 1) + "\n");
process.stderr.write(`wrote ${Object.keys(contracts).length} contracts to ${out}\n`);
