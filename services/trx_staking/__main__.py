"""`python -m services.trx_staking`: run trx-staking."""

from services.common.server import run
from services.common.settings import ServiceName
from services.trx_staking.service import INDEXES, build

if __name__ == "__main__":
    run(ServiceName.TRX_STAKING, build, INDEXES)
