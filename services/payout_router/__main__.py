"""`python -m services.payout_router`: run payout-router."""

from services.common.server import run
from services.payout_router.service import SERVICE

if __name__ == "__main__":
    run(SERVICE)
