"""`python -m services.payment_gateway`: run payment-gateway."""

from services.common.server import run
from services.common.settings import ServiceName
from services.payment_gateway.service import INDEXES, build

if __name__ == "__main__":
    run(ServiceName.PAYMENT_GATEWAY, build, INDEXES)
