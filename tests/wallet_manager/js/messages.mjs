// TronWeb 6.5.1 cross-check of TIP-191 v2 personal messages (tronWeb.trx.signMessageV2 / verifyMessageV2,
// the calls TronLink exposes). Input on stdin: {"sign": [{message, bytes, privateKey}], "verify":
// [{message, bytes, signature}]}; "bytes": true means message is hex of raw bytes. Output on stdout:
// {"signatures": [hex...], "addresses": [base58 | {"error": ...}]}. No network: the host is never called.
import { TronWeb } from 'tronweb';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const tronWeb = new TronWeb({ fullHost: 'http://127.0.0.1:9' });
const msg = (item) => (item.bytes ? Uint8Array.from(Buffer.from(item.message, 'hex')) : item.message);

const signatures = [];
for (const item of input.sign) signatures.push(await tronWeb.trx.signMessageV2(msg(item), item.privateKey));
const addresses = [];
for (const item of input.verify) {
    try {
        addresses.push(await tronWeb.trx.verifyMessageV2(msg(item), item.signature));
    } catch (err) {
        addresses.push({ error: String(err && err.message ? err.message : err) });
    }
}
process.stdout.write(JSON.stringify({ signatures, addresses }));
