"""Accounts for a team server: users with password hashes, an admin flag and hashed API tokens, in SQLite.

The database lives in the jobs directory (users.db), next to the jobs it guards. Passwords are hashed with
argon2; API tokens are random 256-bit strings stored as SHA-256 digests (a token is as strong as a key, so a
fast hash is enough and a lookup stays one query).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DB_NAME = "users.db"
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_PASSWORD = 8
_hasher = PasswordHasher()


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[float] = mapped_column(Float, default=time.time)


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created: Mapped[float] = mapped_column(Float, default=time.time)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(name: str) -> str:
    if not USERNAME_RE.match(name or ""):
        raise AccountError("a username is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


class AccountStore:
    def __init__(self, jobs_dir: str):
        path = os.path.join(jobs_dir, DB_NAME)
        self.engine = create_engine(f"sqlite:///{path}")
        Base.metadata.create_all(self.engine)
        os.chmod(path, 0o600)

    def _user(self, session: Session, username: str) -> User:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise AccountError(f"no user {username!r}")
        return user

    def add(self, username: str, password: str, admin: bool = False) -> None:
        check_username(username)
        check_password(password)
        with Session(self.engine) as session:
            if session.scalar(select(User).where(User.username == username)) is not None:
                raise AccountError(f"user {username!r} already exists")
            session.add(User(username=username, password_hash=_hasher.hash(password), is_admin=admin))
            session.commit()

    def set_password(self, username: str, password: str) -> None:
        check_password(password)
        with Session(self.engine) as session:
            self._user(session, username).password_hash = _hasher.hash(password)
            session.commit()

    def remove(self, username: str) -> None:
        with Session(self.engine) as session:
            user = self._user(session, username)
            for token in session.scalars(select(Token).where(Token.user_id == user.id)):
                session.delete(token)
            session.delete(user)
            session.commit()

    def list(self) -> list[tuple[str, bool]]:
        with Session(self.engine) as session:
            return [(u.username, u.is_admin) for u in session.scalars(select(User).order_by(User.username))]

    def verify(self, username: str, password: str) -> tuple[str, bool] | None:
        """(username, is_admin) when the password is right, else None (the same time either way, near enough)."""
        with Session(self.engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            stored = user.password_hash if user else _DUMMY_HASH
            try:
                _hasher.verify(stored, password or "")
            except (VerificationError, InvalidHashError):
                return None
            return (user.username, user.is_admin) if user else None

    def new_token(self, username: str) -> str:
        token = secrets.token_urlsafe(32)
        with Session(self.engine) as session:
            user = self._user(session, username)
            session.add(Token(user_id=user.id, digest=_digest(token)))
            session.commit()
        return token

    def user_for_token(self, token: str) -> tuple[str, bool] | None:
        if not token:
            return None
        with Session(self.engine) as session:
            row = session.scalar(select(Token).where(Token.digest == _digest(token)))
            if row is None:
                return None
            user = session.get(User, row.user_id)
            return (user.username, user.is_admin) if user else None

    def is_admin(self, username: str) -> bool:
        with Session(self.engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            return bool(user and user.is_admin)


_DUMMY_HASH = _hasher.hash("not a real password, used to spend the same time on unknown users")
