"""Page wording for the core's closed sets, in the reader's language."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from wallet.loyalty.models import StaffRole

CATEGORY_NAMES = {
    "cafe": _l("Cafés"),
    "restaurant": _l("Restaurants"),
    "grocery": _l("Groceries"),
    "fashion": _l("Fashion"),
    "beauty": _l("Beauty"),
    "health": _l("Health"),
    "sports": _l("Sports"),
    "electronics": _l("Electronics"),
    "books": _l("Books"),
    "kids": _l("Kids"),
    "pets": _l("Pets"),
    "travel": _l("Travel"),
    "fuel": _l("Fuel"),
    "entertainment": _l("Entertainment"),
    "services": _l("Services"),
    "other": _l("Other"),
}

ROLE_NAMES = {
    StaffRole.OWNER: _l("Owner"),
    StaffRole.MANAGER: _l("Manager"),
    StaffRole.CASHIER: _l("Cashier"),
}
ROLE_DUTIES = {
    StaffRole.OWNER: _l("Everything, including staff, API keys and webhooks."),
    StaffRole.MANAGER: _l("Clubs, their members and messages."),
    StaffRole.CASHIER: _l("The till only: purchases, redemptions and stamps."),
}

# Ledger entry types (wallet.loyalty.ledger_models.TYPES).
ENTRY_NAMES = {
    "purchase": _l("Purchase"),
    "redeem": _l("Redemption"),
    "refund": _l("Refund"),
    "adjust": _l("Adjustment"),
    "expire": _l("Expired"),
    "bonus": _l("Bonus"),
    "release": _l("Now spendable"),
    "tier": _l("Level"),
    "reward": _l("Reward"),
    "stamp": _l("Stamp"),
}
