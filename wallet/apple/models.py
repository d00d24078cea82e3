"""Tables of the Apple side: devices registered for passes, their logs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wallet.db import Base, utcnow
from wallet.loyalty.models import BigId, Membership


class WalletApp(StrEnum):
    """The app that holds a pass on a device, told by the Authorization
    scheme of the web service calls; each is pushed through its own API."""

    APPLE = "apple"  # ApplePass: Apple Wallet, through APNs
    WALLETPASSES = "walletpasses"  # AndroidPass
    WALLETUNION = "walletunion"  # WalletUnionPass (Firebase)
    WALLETUNION_HMS = "walletunion_hms"  # WalletUnionHMSPass (Huawei)


class DeviceRegistration(Base):
    """A device (deviceLibraryIdentifier) asking for pushes about one pass."""

    __tablename__ = "apple_registrations"
    __table_args__ = (
        UniqueConstraint(
            "device_library_identifier", "membership_id", name="uq_apple_registrations_device_pass"
        ),
        Index("ix_apple_registrations_device", "device_library_identifier", "pass_type_identifier"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_library_identifier: Mapped[str] = mapped_column(String(128))
    pass_type_identifier: Mapped[str] = mapped_column(String(255))
    membership_id: Mapped[int] = mapped_column(
        ForeignKey("memberships.id", ondelete="CASCADE"), index=True
    )
    # APNs tokens are hex; Firebase and Huawei tokens are longer and not.
    push_token: Mapped[str] = mapped_column(String(255))
    app: Mapped[WalletApp] = mapped_column(
        Enum(WalletApp, name="app", native_enum=False, create_constraint=True, length=16,
             values_callable=lambda apps: [a.value for a in apps]),
        default=WalletApp.APPLE, server_default=WalletApp.APPLE.value,
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    membership: Mapped[Membership] = relationship()


class DeviceLogEntry(Base):
    """A message a device sent to POST /v1/log; kept bounded."""

    __tablename__ = "apple_device_logs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
