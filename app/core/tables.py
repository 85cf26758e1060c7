"""The tables behind the models, for Core statements: the hot paths (taking events,
claiming and recording attempts, key lookups) use no ORM session or identity map."""

from typing import cast

from sqlalchemy import Table

from app.core.models import (
    Account,
    Action,
    ApiKey,
    Delivery,
    DeliveryAttempt,
    Event,
    Notice,
    Webhook,
)

accounts = cast(Table, Account.__table__)
actions = cast(Table, Action.__table__)
api_keys = cast(Table, ApiKey.__table__)
attempts = cast(Table, DeliveryAttempt.__table__)
deliveries = cast(Table, Delivery.__table__)
events = cast(Table, Event.__table__)
notices = cast(Table, Notice.__table__)
webhooks = cast(Table, Webhook.__table__)
