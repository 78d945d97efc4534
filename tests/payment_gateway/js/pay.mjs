// TronWeb 6 (npm, unchanged) pays deposit addresses on the devnet: the independent client of the payment
// tests. Input: env DEVNET_URL, PRIVATE_KEY, USDT, PAYMENTS (JSON [[asset, address, amount], ...] with asset
// "USDT" or "TRX"). Output: {"txids": [...]} on stdout, in order; any failure exits non-zero.
import { TronWeb } from 'tronweb';

const { DEVNET_URL, PRIVATE_KEY, USDT, PAYMENTS } = process.env;
const tronWeb = new TronWeb({ fullHost: DEVNET_URL, privateKey: PRIVATE_KEY });
const usdt = await tronWeb.contract().at(USDT);
const txids = [];
for (const [asset, to, amount] of JSON.parse(PAYMENTS)) {
    if (asset === 'TRX') {
        const sent = await tronWeb.trx.sendTrx(to, amount);
        if (!sent.result) throw new Error(`sendTrx failed: ${JSON.stringify(sent)}`);
        txids.push(sent.txid ?? sent.transaction.txID);
    } else {
        txids.push(await usdt.transfer(to, amount).send({ feeLimit: 100_000_000 }));
    }
}
process.stdout.write(JSON.stringify({ txids }));
