"""`python -m services.usdt_manager`: run usdt-manager."""

from services.common.server import run
from services.usdt_manager.service import SERVICE

if __name__ == "__main__":
    run(SERVICE)
