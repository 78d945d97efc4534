"""`python -m services.trx_staking`: run trx-staking."""

from services.common.server import run
from services.trx_staking.service import SERVICE

if __name__ == "__main__":
    run(SERVICE)
