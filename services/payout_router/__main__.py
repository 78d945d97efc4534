"""`python -m services.payout_router`: run payout-router."""

from services.common.server import run
from services.common.settings import ServiceName
from services.payout_router.service import INDEXES, build

if __name__ == "__main__":
    run(ServiceName.PAYOUT_ROUTER, build, INDEXES)
