"""`python -m services.usdt_manager`: run usdt-manager."""

from services.common.server import run
from services.common.settings import ServiceName
from services.usdt_manager.service import INDEXES, build

if __name__ == "__main__":
    run(ServiceName.USDT_MANAGER, build, INDEXES)
