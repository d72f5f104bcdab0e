// The reference for bistro's extrinsics against a runtime's metadata: Polkadot JS (@polkadot/types,
// installed in tools/node by scripts/setup) encodes the same calls from their arguments, the
// signing payload from the same transaction context, and the signed extrinsic around bistro's own
// signature. Nothing here reads bistro's bytes: the C++ test compares.
//   node extrinsic_ref.mjs REQUEST.json  ->  {"calls": [hex...], "payload": hex, "extrinsic": hex}
// REQUEST: {"metadata": path, "calls": [{"pallet", "method", "args"}...],
//           "signed": {"call": index, "signer": hex, "signature": hex, "era": {"current", "period"},
//                      "nonce", "tip", "specVersion", "transactionVersion", "genesisHash",
//                      "blockHash"}}
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tools/node/package.json', import.meta.url));
const { TypeRegistry, Metadata } = require('@polkadot/types');
const { expandMetadata } = require('@polkadot/types/metadata/decorate');
const { u8aToHex } = require('@polkadot/util');

const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const registry = new TypeRegistry();
const metadata = new Metadata(registry, fs.readFileSync(req.metadata));
registry.setMetadata(metadata);
registry.register({});  // quiet: no chain-specific overrides, the metadata alone
const tx = expandMetadata(registry, metadata).tx;
const calls = req.calls.map(({ pallet, method, args }) => {
  if (!tx[pallet] || !tx[pallet][method]) throw new Error(`no call ${pallet}.${method}`);
  return tx[pallet][method](...args);
});
const out = { calls: calls.map((c) => c.toHex()) };
if (req.signed) {
  const s = req.signed;
  const call = calls[s.call];
  const era = registry.createType('ExtrinsicEra', { current: s.era.current, period: s.era.period });
  const fields = {
    method: call.toHex(), era, nonce: s.nonce, tip: s.tip, specVersion: s.specVersion,
    transactionVersion: s.transactionVersion, genesisHash: s.genesisHash, blockHash: s.blockHash,
    mode: 0, version: 4,
  };
  const payload = registry.createType('ExtrinsicPayload', fields, { version: 4 });
  out.payload = u8aToHex(payload.toU8a({ method: true }));
  const xt = registry.createType('Extrinsic', call, { version: 4 });
  xt.addSignature(s.signer, { Sr25519: s.signature }, fields);
  out.extrinsic = xt.toHex();
}
process.stdout.write(JSON.stringify(out));
