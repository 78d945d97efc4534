"""`python -m services.payment_gateway`: run payment-gateway."""

from services.common.server import run
from services.payment_gateway.service import SERVICE

if __name__ == "__main__":
    run(SERVICE)
