"""`python -m services.wallet_manager`: run wallet-manager."""

from services.common.server import run
from services.common.settings import ServiceName
from services.wallet_manager.service import INDEXES, build

if __name__ == "__main__":
    run(ServiceName.WALLET_MANAGER, build, INDEXES)
