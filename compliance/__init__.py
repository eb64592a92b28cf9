"""compliance package (built in later issues).

Public today: the customer state compliance publishes to every gateway's pre-trade checks.
"""

from compliance.customer_state import (
    CustomerState,
    customer_state_key,
    ensure_bucket,
    publish_customer_state,
)

__all__ = [
    "CustomerState",
    "customer_state_key",
    "ensure_bucket",
    "publish_customer_state",
]
