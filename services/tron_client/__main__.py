"""`python -m services.tron_client`: run tron-client."""

from services.common.server import run
from services.tron_client.service import SERVICE

if __name__ == "__main__":
    run(SERVICE)
