"""Treasury automation with every switch on, a round a second, on a treasury wallet of its own: it stakes up
to the energy target (keeping the floor liquid), votes all tron power for the witness, claims the rewards
and stakes them again. The main process, with every switch off (the default), never acts on its wallet."""

from __future__ import annotations

from tests.trx_staking.conftest import Rig
from tests.trx_staking.support import TRX, add_staking, new_wallet, staking_policy, wait_until


def test_the_treasury_stakes_votes_claims_and_restakes(rig: Rig) -> None:
    policy = staking_policy([], [rig.witness])
    treasury = new_wallet(rig.devnet, rig.stubs.wallets(), policy, trx=1_200 * TRX)
    per_trx = rig.node.resource(rig.staking.address)
    # The energy of about 200 TRX at today's network weight: more than the 1,200 - 1,000 TRX above the floor.
    target = 200 * per_trx["TotalEnergyLimit"] // per_trx["TotalEnergyWeight"]
    proc = add_staking(
        rig.cluster, rig.log_dir, "treasury", PAYMENT_DB_NAME=rig.cluster.env["PAYMENT_DB_NAME"] + "_trs",
        STAKING_WALLET_ID=treasury.wallet_id, STAKING_TREASURY_SECONDS="1",
        STAKING_AUTO_STAKE="true", STAKING_AUTO_STAKE_TARGET_ENERGY=str(target),
        STAKING_AUTO_STAKE_FLOOR_SUN=str(1_000 * TRX), STAKING_AUTO_VOTE="true",
        STAKING_AUTO_VOTE_WITNESSES=rig.witness, STAKING_AUTO_CLAIM="true", STAKING_AUTO_RESTAKE="true",
    )  # fmt: skip
    try:
        # Staked: everything above the floor but what a few system transactions' bandwidth may cost.
        first = wait_until(lambda: rig.node.frozen(treasury.address), lambda f: f > 0, timeout=60)
        assert 190 * TRX <= first <= 200 * TRX and rig.node.balance(treasury.address) >= 1_000 * TRX - 5 * TRX
        # Claimed (the first claim of an account is always allowed), then restaked: more staked than the TRX
        # above the floor ever was, and every vote follows the tron power.
        account = wait_until(
            lambda: rig.node.account(treasury.address),
            lambda a: a.get("latest_withdraw_time", 0) > 0 and rig.node.frozen(treasury.address) > 200 * TRX,
            timeout=90,
        )
        staked = rig.node.frozen(treasury.address)
        wait_until(
            lambda: rig.node.account(treasury.address).get("votes", []),
            lambda v: v == [{"vote_address": rig.witness, "vote_count": staked // TRX}],
            timeout=60,
        )
        assert account["balance"] >= 1_000 * TRX - 5 * TRX  # the floor stayed liquid
    finally:
        proc.stop()
    # Every switch off in the main process: its staking wallet never voted or claimed.
    main = rig.node.account(rig.staking.address)
    assert "votes" not in main and "latest_withdraw_time" not in main
