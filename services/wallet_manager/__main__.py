"""`python -m services.wallet_manager`: run wallet-manager; `... rotate-key|import-seed|status`: operator
commands (services/wallet_manager/admin.py)."""

import sys

from services.common.server import run
from services.common.settings import ServiceName
from services.wallet_manager.service import INDEXES, build

if __name__ == "__main__":
    if len(sys.argv) > 1:
        from services.wallet_manager.admin import main

        sys.exit(main(sys.argv[1:]))
    run(ServiceName.WALLET_MANAGER, build, INDEXES)
