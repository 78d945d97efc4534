"""`python -m services.wallet_manager`: run wallet-manager; `... rotate-key|import-seed|status`: operator
commands (services/wallet_manager/admin.py)."""

import sys

from services.common.server import run
from services.wallet_manager.service import SERVICE

if __name__ == "__main__":
    if len(sys.argv) > 1:
        from services.wallet_manager.admin import main

        sys.exit(main(sys.argv[1:]))
    run(SERVICE)
