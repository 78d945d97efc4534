// Compiles every contracts/src/*.sol with the pinned npm `solc` and writes one artifact per contract to
// <outDir>/<Name>.json (default contracts/artifacts). Output is byte-for-byte reproducible: fixed settings,
// source unit names relative to contracts/src, sorted keys where order could vary, no timestamps.
//
// usage: node contracts/build.mjs [outDir]
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const PINNED_VERSION = "0.8.30";
const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, "src");
const outDir = resolve(process.argv[2] ?? join(here, "artifacts"));

// evmVersion "london": implemented by java-tron's TVM (getAllowTvmLondon = 1 on mainnet) and by py-evm's
// fork that devnet/tvm/ builds on. It predates Shanghai, so solc emits no PUSH0 (older TVM nodes and
// tools reject it) and no Cancun opcodes (MCOPY/TLOAD/TSTORE; TVM's Cancun activation is unconfirmed).
const SETTINGS = {
  evmVersion: "london",
  optimizer: { enabled: true, runs: 200 },
  // No IPFS/Swarm hash in the bytecode: keeps artifacts independent of anything but source + settings.
  metadata: { bytecodeHash: "none" },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"] },
  },
};

const version = solc.version();
if (!version.startsWith(`${PINNED_VERSION}+`)) {
  console.error(`solc ${version} found, ${PINNED_VERSION} required (run npm ci)`);
  process.exit(1);
}

const sources = {};
for (const file of readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: readFileSync(join(srcDir, file), "utf8") };
}

const input = { language: "Solidity", sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors ?? []).filter((e) => e.severity === "error");
for (const e of output.errors ?? []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

mkdirSync(outDir, { recursive: true });
for (const file of Object.keys(output.contracts).sort()) {
  for (const name of Object.keys(output.contracts[file]).sort()) {
    const c = output.contracts[file][name];
    if (!c.evm.bytecode.object) continue; // abstract contracts and interfaces: nothing to deploy
    const artifact = {
      contractName: name,
      sourceName: `contracts/src/${file}`,
      compiler: { name: "solc", version, settings: SETTINGS },
      abi: c.abi,
      bytecode: c.evm.bytecode.object,
      deployedBytecode: c.evm.deployedBytecode.object,
      methodIdentifiers: c.evm.methodIdentifiers,
    };
    const path = join(outDir, `${name}.json`);
    writeFileSync(path, JSON.stringify(artifact, null, 2) + "\n");
    console.log(`wrote ${path} (${c.evm.deployedBytecode.object.length / 2} bytes runtime)`);
  }
}
