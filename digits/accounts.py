"""Accounts for a team server: users, password hashes, permissions, sign-in sessions and API tokens, in SQLite.

The database lives in the jobs directory (users.db), next to the jobs it guards. Passwords are hashed with
argon2; API tokens and session ids are random 256-bit strings stored as SHA-256 digests (they are as strong as
keys, so a fast hash is enough and a lookup stays one query). A signed cookie only names a session row: signing
out, a new password or removing the user deletes the rows, so old cookies and tokens stop working at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    delete,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DB_NAME = "users.db"
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_PASSWORD = 8
# What a member may be allowed beyond the defaults; admins hold all of them.
PERMISSIONS = ("code",)
# A token's "last used" is written at most this often, so scripts polling a server do not write on every call.
LAST_USED_EVERY_S = 60.0
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
    # Added after the first release; _migrate adds them to older databases.
    label: Mapped[str] = mapped_column(String(100), default="", server_default="")
    expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used: Mapped[float | None] = mapped_column(Float, nullable=True)


class SignInSession(Base):
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created: Mapped[float] = mapped_column(Float, default=time.time)
    expires: Mapped[float | None] = mapped_column(Float, nullable=True)


class Permission(Base):
    __tablename__ = "permissions"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))


# Columns added to tables that older users.db files already have: (table, column, SQL type and default).
_ADDED_COLUMNS = [
    ("tokens", "label", "VARCHAR(100) NOT NULL DEFAULT ''"),
    ("tokens", "expires", "FLOAT"),
    ("tokens", "last_used", "FLOAT"),
]


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never the token itself."""

    id: int
    label: str
    created: float
    expires: float | None
    last_used: float | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_username(name: str) -> str:
    if not USERNAME_RE.match(name or ""):
        raise AccountError("a username is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def check_permission(name: str) -> str:
    if name not in PERMISSIONS:
        raise AccountError(f"no permission {name!r}; known permissions: {', '.join(PERMISSIONS)}")
    return name


def password_matches(stored_hash: str, password: str) -> bool:
    """The slow, CPU-bound half of signing in: plain strings in, so it may run on another thread."""
    try:
        return _hasher.verify(stored_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def _migrate(engine) -> None:
    """Bring a users.db made by an older DIGITS up to date in place: new tables, then new columns."""
    Base.metadata.create_all(engine)
    for table, column, sql_type in _ADDED_COLUMNS:
        if column in {c["name"] for c in inspect(engine).get_columns(table)}:
            continue
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))
        except OperationalError:
            # Another process (the server and the users command share the file) added it first.
            if column not in {c["name"] for c in inspect(engine).get_columns(table)}:
                raise


class AccountStore:
    def __init__(self, jobs_dir: str):
        path = os.path.join(jobs_dir, DB_NAME)
        self.engine = create_engine(f"sqlite:///{path}")
        _migrate(self.engine)
        os.chmod(path, 0o600)

    def _user(self, session: Session, username: str) -> User:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise AccountError(f"no user {username!r}")
        return user

    # ---- users ------------------------------------------------------------------------------------------------
    def add(self, username: str, password: str, admin: bool = False) -> None:
        check_username(username)
        check_password(password)
        with Session(self.engine) as session:
            if session.scalar(select(User).where(User.username == username)) is not None:
                raise AccountError(f"user {username!r} already exists")
            session.add(User(username=username, password_hash=_hasher.hash(password), is_admin=admin))
            session.commit()

    def set_password(self, username: str, password: str) -> tuple[int, int]:
        """A new password ends every session and token of the user; returns how many (sessions, tokens)."""
        check_password(password)
        with Session(self.engine) as session:
            user = self._user(session, username)
            user.password_hash = _hasher.hash(password)
            ended = self._end_all(session, user.id, tokens=True)
            session.commit()
        return ended

    def remove(self, username: str) -> None:
        with Session(self.engine) as session:
            user = self._user(session, username)
            self._end_all(session, user.id, tokens=True)
            session.execute(delete(Permission).where(Permission.user_id == user.id))
            session.delete(user)
            session.commit()

    def list(self) -> list[tuple[str, bool]]:
        with Session(self.engine) as session:
            return [(u.username, u.is_admin) for u in session.scalars(select(User).order_by(User.username))]

    def is_admin(self, username: str) -> bool:
        with Session(self.engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            return bool(user and user.is_admin)

    # ---- passwords ----------------------------------------------------------------------------------------------
    def password_record(self, username: str) -> tuple[str, bool, bool]:
        """(stored hash, user exists, is admin): an unknown user gets a real hash, so checking costs the same."""
        with Session(self.engine) as session:
            row = session.execute(select(User.password_hash, User.is_admin).where(User.username == username)).first()
        return (row[0], True, bool(row[1])) if row else (_DUMMY_HASH, False, False)

    def verify(self, username: str, password: str) -> tuple[str, bool] | None:
        """(username, is_admin) when the password is right, else None (the same time either way, near enough)."""
        stored, exists, admin = self.password_record(username)
        return (username, admin) if password_matches(stored, password) and exists else None

    # ---- permissions --------------------------------------------------------------------------------------------
    def permissions(self, username: str) -> frozenset[str]:
        """What the user may do beyond the defaults; an admin holds every permission, an unknown user none."""
        with Session(self.engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                return frozenset()
            if user.is_admin:
                return frozenset(PERMISSIONS)
            return frozenset(session.scalars(select(Permission.name).where(Permission.user_id == user.id)))

    def grant(self, username: str, permission: str) -> None:
        check_permission(permission)
        with Session(self.engine) as session:
            user = self._user(session, username)
            held = session.scalar(
                select(Permission).where(Permission.user_id == user.id, Permission.name == permission)
            )
            if held is None:
                session.add(Permission(user_id=user.id, name=permission))
                session.commit()

    def revoke(self, username: str, permission: str) -> None:
        check_permission(permission)
        with Session(self.engine) as session:
            user = self._user(session, username)
            session.execute(delete(Permission).where(Permission.user_id == user.id, Permission.name == permission))
            session.commit()

    # ---- sign-in sessions ---------------------------------------------------------------------------------------
    def start_session(self, username: str, hours: float) -> str:
        """A new session id for a browser cookie; it ends after `hours` (0: only when signed out or revoked)."""
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with Session(self.engine) as session:
            user = self._user(session, username)
            session.execute(delete(SignInSession).where(SignInSession.expires < now))
            expires = now + hours * 3600 if hours > 0 else None
            session.add(SignInSession(user_id=user.id, digest=_digest(sid), created=now, expires=expires))
            session.commit()
        return sid

    def user_for_session(self, sid: str | None) -> tuple[str, bool] | None:
        """(username, is_admin) of a live session: one indexed query, run on every request a cookie makes."""
        if not sid:
            return None
        with Session(self.engine) as session:
            row = session.execute(
                select(User.username, User.is_admin)
                .join(SignInSession, SignInSession.user_id == User.id)
                .where(
                    SignInSession.digest == _digest(sid),
                    or_(SignInSession.expires.is_(None), SignInSession.expires > time.time()),
                )
            ).first()
        return (row[0], bool(row[1])) if row else None

    def end_session(self, sid: str | None) -> None:
        if sid:
            with Session(self.engine) as session:
                session.execute(delete(SignInSession).where(SignInSession.digest == _digest(sid)))
                session.commit()

    def end_sessions(self, username: str) -> int:
        """Sign the user out everywhere; returns how many sessions ended."""
        with Session(self.engine) as session:
            ended, _ = self._end_all(session, self._user(session, username).id, tokens=False)
            session.commit()
        return ended

    @staticmethod
    def _end_all(session: Session, user_id: int, tokens: bool) -> tuple[int, int]:
        sessions = session.execute(delete(SignInSession).where(SignInSession.user_id == user_id)).rowcount
        revoked = session.execute(delete(Token).where(Token.user_id == user_id)).rowcount if tokens else 0
        return sessions, revoked

    # ---- API tokens -----------------------------------------------------------------------------------------------
    def new_token(self, username: str, *, label: str = "", expires_days: float | None = None) -> str:
        if expires_days is not None and expires_days <= 0:
            raise AccountError("--expires-days must be more than 0")
        if len(label) > 100:
            raise AccountError("a token's label has at most 100 characters")
        token = secrets.token_urlsafe(32)
        now = time.time()
        expires = now + expires_days * 86400 if expires_days is not None else None
        with Session(self.engine) as session:
            user = self._user(session, username)
            session.add(Token(user_id=user.id, digest=_digest(token), created=now, label=label, expires=expires))
            session.commit()
        return token

    def tokens(self, username: str) -> list[TokenInfo]:
        with Session(self.engine) as session:
            user = self._user(session, username)
            rows = session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.id))
            return [TokenInfo(t.id, t.label or "", t.created, t.expires, t.last_used) for t in rows]

    def revoke_token(self, username: str, token_id: int) -> None:
        with Session(self.engine) as session:
            user = self._user(session, username)
            gone = session.execute(delete(Token).where(Token.user_id == user.id, Token.id == token_id)).rowcount
            if not gone:
                raise AccountError(f"{username} has no token {token_id} (python -m digits.users tokens {username})")
            session.commit()

    def user_for_token(self, token: str | None) -> tuple[str, bool] | None:
        """(username, is_admin) for a live token, else None (unknown, revoked or expired)."""
        if not token:
            return None
        now = time.time()
        with Session(self.engine) as session:
            row = session.execute(
                select(User.username, User.is_admin, Token.id, Token.last_used)
                .join(Token, Token.user_id == User.id)
                .where(Token.digest == _digest(token), or_(Token.expires.is_(None), Token.expires > now))
            ).first()
            if row is None:
                return None
            if row.last_used is None or now - row.last_used > LAST_USED_EVERY_S:
                session.execute(update(Token).where(Token.id == row.id).values(last_used=now))
                session.commit()
        return (row.username, bool(row.is_admin))


_DUMMY_HASH = _hasher.hash("not a real password, used to spend the same time on unknown users")
