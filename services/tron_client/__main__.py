"""`python -m services.tron_client`: run tron-client."""

from services.common.server import run
from services.common.settings import ServiceName
from services.tron_client.service import INDEXES, build

if __name__ == "__main__":
    run(ServiceName.TRON_CLIENT, build, INDEXES)
