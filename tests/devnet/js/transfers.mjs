// TronWeb 6.5.1, unchanged, against the devnet: a TRX transfer (sendTrx, then the same flow via
// sign + sendHexTransaction) and a TRC20 transfer (contract().at().transfer().send()), each confirmed
// with getBalance (walletsolidity) / balanceOf. Input: env DEVNET_URL, PRIVATE_KEY, USDT, TO (base58).
// Output: one JSON object on stdout; any failure exits non-zero with the error on stderr.
import { TronWeb } from 'tronweb';

const { DEVNET_URL, PRIVATE_KEY, USDT, TO } = process.env;
const tronWeb = new TronWeb({ fullHost: DEVNET_URL, privateKey: PRIVATE_KEY });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// TronWeb's getTransactionInfo reads walletsolidity: poll until the tx is solidified (bounded).
async function waitSolid(txid, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        const info = await tronWeb.trx.getTransactionInfo(txid);
        if (info && info.id) return info;
        await sleep(250);
    }
    throw new Error(`transaction ${txid} not solidified within ${timeoutMs} ms`);
}

const out = {};
out.connected = await tronWeb.isConnected();
out.from = tronWeb.defaultAddress.base58;

const sent = await tronWeb.trx.sendTrx(TO, 1_500_000);
if (!sent.result) throw new Error(`sendTrx failed: ${JSON.stringify(sent)}`);
out.trx_txid = sent.txid ?? sent.transaction.txID;
out.trx_info = await waitSolid(out.trx_txid);
out.balance_after_trx = await tronWeb.trx.getBalance(TO);

const unsigned = await tronWeb.transactionBuilder.sendTrx(TO, 250_000, out.from);
const signed = await tronWeb.trx.sign(unsigned);
// Transaction = raw_data (field 1) + signatures (field 2), encoded by hand: TronWeb has no such helper.
const varint = (n) => {
    const bytes = [];
    do {
        bytes.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
        n >>>= 7;
    } while (n > 0);
    return bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
};
const raw = signed.raw_data_hex;
const pbHex = `0a${varint(raw.length / 2)}${raw}` + signed.signature.map((s) => `12${varint(s.length / 2)}${s}`).join('');
const hexResult = await tronWeb.trx.sendHexTransaction(pbHex);
if (!hexResult.result) throw new Error(`sendHexTransaction failed: ${JSON.stringify(hexResult)}`);
out.hex_txid = hexResult.txid ?? hexResult.transaction.txID;
await waitSolid(out.hex_txid);
out.balance_after_hex = await tronWeb.trx.getBalance(TO);

const usdt = await tronWeb.contract().at(USDT);
out.decimals = Number(await usdt.decimals().call());
const before = BigInt(await usdt.balanceOf(TO).call());
out.trc20_txid = await usdt.transfer(TO, 4321).send({ feeLimit: 100_000_000 });
out.trc20_info = await waitSolid(out.trc20_txid);
out.token_balance = (BigInt(await usdt.balanceOf(TO).call()) - before).toString();

// read paths TronWeb parses itself
const block = await tronWeb.trx.getCurrentBlock();
out.current_block = block.block_header.raw_data.number;
out.block_range = (await tronWeb.trx.getBlockRange(1, 3)).map((b) => b.block_header.raw_data.number);
out.block_by_hash = (await tronWeb.trx.getBlockByHash(block.blockID)).blockID === block.blockID;
out.chain_params = (await tronWeb.trx.getChainParameters()).length;
out.srs = (await tronWeb.trx.listSuperRepresentatives()).length;
out.resources = await tronWeb.trx.getAccountResources(out.from);
out.bandwidth = await tronWeb.trx.getBandwidth(out.from);
out.reward = await tronWeb.trx.getReward(out.from);
out.energy_prices = await tronWeb.trx.getEnergyPrices();
out.confirmed = (await tronWeb.trx.getConfirmedTransaction(out.trx_txid)).txID;
out.contract_abi = (await tronWeb.trx.getContract(USDT)).abi.entrys.length;
out.node_version = (await tronWeb.trx.getNodeInfo()).configNodeInfo.codeVersion;

process.stdout.write(JSON.stringify(out));
