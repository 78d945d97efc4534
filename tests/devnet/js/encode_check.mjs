// Independent encoder check: feed transaction JSON (as our devnet prints it) to TronWeb 6.5.1's own local
// encoder (utils.transaction.txJsonToPb, the code TronWeb uses to verify node-built transactions before
// signing) and print its raw_data_hex. Input: a JSON array of transactions on stdin.
// Output: a JSON array with {"raw_data_hex": ...} or {"error": ...} per transaction, in order.
import { utils } from 'tronweb';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const txs = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const { txJsonToPb, txPbToRawDataHex, txCheck } = utils.transaction;
const out = txs.map((tx) => {
    try {
        const pb = txJsonToPb(tx);
        return { raw_data_hex: txPbToRawDataHex(pb), tx_check: txCheck(tx) };
    } catch (err) {
        return { error: String(err && err.message ? err.message : err) };
    }
});
process.stdout.write(JSON.stringify(out));
