"""What the studio shows: a view class per orgschema table, built from the secret declaration.

Each view has every column of its table except those
:data:`orgschema.secret_columns.SECRET_COLUMNS` declares, so no request can
list, filter, sort by or write them. A secret-bearing column is replaced by
its safe part, computed in the database: ``verification`` shows a ``kind``
column (``reset-password``, ``magic-link``...) that lists, filters and sorts
like any other while ``identifier`` itself never leaves the database.

The views also give Better-auth's text primary keys a Python-side default
(:func:`orgschema.ids.generate_id`) and stamp ``updatedAt``, so rows created
here look like Better-auth's own, and they run every value written through
:mod:`orgschema.validation`: e-mails stored as Better-auth stores them, names
trimmed and non-empty, slugs well formed, and every text within a length
that fits the column's purpose. A refusal is a 422 naming the field.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from fastapi import HTTPException
from piccolo.columns import Column, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import ColumnMeta
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.readable import Readable
from piccolo.querystring import QueryString
from piccolo.table import Table, create_table_class
from piccolo_admin.endpoints import TableConfig
from piccolo_api.crud.endpoints import OrderBy, PiccoloCRUD
from piccolo_api.crud.hooks import Hook, HookType
from piccolo_api.crud.validators import Validators
from starlette.requests import Request

from orgschema.errors import InvalidInputError
from orgschema.ids import generate_id
from orgschema.secret_columns import SECRET_COLUMNS
from orgschema.tables import ALL_TABLES
from orgschema.validation import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SLUG_LENGTH,
    check_slug,
    check_text,
    normalise_email,
    normalise_name,
)

#: Longest id (a primary or foreign key held as text) the studio writes.
MAX_ID_LENGTH = 255

#: Longest value of any other text column the studio writes (user agents,
#: OAuth scopes); ``user.image`` may hold a data: URL, so it gets more.
MAX_TEXT_LENGTH = 10_000
MAX_IMAGE_LENGTH = 100_000

_AUTH = "Auth"
_ORGANIZATIONS = "Organizations"
_SETUP = "Setup"

Check = Callable[[object, str], object]


def _text(max_length: int) -> Check:
    return lambda value, name: check_text(value, name, max_length=max_length)


@dataclass(frozen=True)
class _Layout:
    """How one table appears and what may be done to it."""

    group: str
    columns: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    link: str | None = None
    order: tuple[str, ...] = ()
    #: (template, column) shown wherever another row points at this one.
    readable: tuple[str, str] | None = None
    #: Methods refused, with the reason given (405).
    refused: Mapping[str, str] = field(default_factory=dict)
    #: How a written value is checked and stored, per column; other text
    #: columns are only held to a length.
    checks: Mapping[str, Check] = field(default_factory=dict)


_READ_ONLY = "is written only by orgschema itself; the studio shows it read-only"

_LAYOUTS: dict[str, _Layout] = {
    "user": _Layout(
        _AUTH,
        columns=("email", "name", "emailVerified", "createdAt"),
        filters=("email", "name", "emailVerified", "createdAt"),
        link="email",
        order=("email",),
        readable=("%s", "email"),
        checks={
            "email": normalise_email,
            "name": normalise_name,
            "image": _text(MAX_IMAGE_LENGTH),
        },
    ),
    "session": _Layout(
        _AUTH,
        columns=("expiresAt", "userId", "ipAddress", "userAgent", "createdAt"),
        filters=("userId", "expiresAt", "ipAddress"),
        link="expiresAt",
        order=("-createdAt",),
        refused={"POST": "sessions are created by signing in through Better-auth"},
    ),
    "account": _Layout(
        _AUTH,
        columns=("providerId", "userId", "accountId", "createdAt"),
        filters=("userId", "providerId"),
        link="providerId",
        order=("-createdAt",),
    ),
    "verification": _Layout(
        _AUTH,
        columns=("kind", "expiresAt", "createdAt"),
        filters=("kind", "expiresAt"),
        link="kind",
        order=("-createdAt",),
        refused={
            method: "verifications are written by Better-auth only; delete one to revoke it"
            for method in ("POST", "PATCH", "PUT")
        },
    ),
    "organization": _Layout(
        _ORGANIZATIONS,
        columns=("name", "slug", "created_at", "updated_at"),
        filters=("name", "slug"),
        link="name",
        order=("name",),
        readable=("%s", "name"),
        checks={"name": normalise_name, "slug": check_slug},
    ),
    "organization_user": _Layout(
        _ORGANIZATIONS,
        columns=("role", "organization_id", "user_id", "created_at"),
        filters=("organization_id", "user_id", "role"),
        link="role",
        order=("-created_at",),
    ),
    "profile": _Layout(
        _ORGANIZATIONS,
        columns=("role", "user_id", "organization_id", "created_at"),
        filters=("user_id", "role", "organization_id"),
        link="role",
        order=("-created_at",),
    ),
    # Written once by bootstrap_first_admin; seeding checks it, so nobody
    # should be able to delete it with a click.
    "environment_marker": _Layout(
        _SETUP,
        refused={
            method: f"environment_marker {_READ_ONLY}"
            for method in ("POST", "PATCH", "PUT", "DELETE")
        },
    ),
}

_DEFAULT_LAYOUT = _Layout(_SETUP)

# The schema's intent for the columns with no check of their own.
_LIMITS = {"email": MAX_EMAIL_LENGTH, "name": MAX_NAME_LENGTH, "slug": MAX_SLUG_LENGTH}


@dataclass(frozen=True)
class StudioTable:
    """What the studio's HTTP layer needs to know about one table it serves."""

    name: str
    #: Every column of the view (what may be filtered, sorted and selected).
    columns: frozenset[str]
    #: The columns the table has in the database but the studio never touches.
    hidden: frozenset[str]


###############################################################################
# Columns


@dataclass
class _DerivedMeta(ColumnMeta):
    """Column metadata whose "path" is an SQL expression over the real table, not a column.

    Piccolo writes a column into SELECT, WHERE and ORDER BY through
    ``_get_path``; answering with the expression makes the derived column
    list, filter and sort like a real one, computed where the data is.
    """

    expression: str = ""

    def _get_path(self, include_quotes: bool = False) -> str:
        return self.expression


def _derived_column(expression: str, help_text: str) -> Text:
    column = Text(null=True, default=None, help_text=help_text)
    meta = column._meta
    column._meta = _DerivedMeta(
        **{item.name: getattr(meta, item.name) for item in fields(meta) if item.init},
        expression=expression,
    )
    return column


def _view_column(column: Column, views: dict[type[Table], type[Table]]) -> Column:
    if isinstance(column, ForeignKey):
        params = {key: value for key, value in column._meta.params.items() if key != "references"}
        target = column._foreign_key_meta.resolved_references
        return ForeignKey(
            references=views.get(target, target), help_text=column._meta.help_text, **params
        )
    if (
        column._meta.primary_key
        and isinstance(column, (Text, Varchar))
        and column._meta.params.get("default") is None
    ):
        # Better-auth generates these ids in JavaScript; without a default here
        # Piccolo Admin would insert NULL and answer with a 500.
        return Text(
            primary_key=True,
            default=generate_id,
            help_text="Generated like Better-auth's ids (32 letters and digits).",
        )
    if isinstance(column, Timestamptz) and column._meta.name == "updatedAt":
        # Better-auth sets updatedAt itself; do the same for edits made here.
        now = TimestamptzNow()
        return Timestamptz(default=now, auto_update=now.python, help_text=column._meta.help_text)
    return column.copy()


def _view_members(table: type[Table], views: dict[type[Table], type[Table]]) -> dict[str, Any]:
    tablename = table._meta.tablename
    declared = {item.column: item for item in SECRET_COLUMNS if item.table == tablename}
    members: dict[str, Any] = {}
    for column in table._meta.columns:
        secret = declared.get(column._meta.db_column_name)
        if secret is None:
            members[column._meta.name] = _view_column(column, views)
        elif secret.shown_as is not None and secret.show_sql is not None:
            real = f'"{tablename}"."{column._meta.db_column_name}"'
            members[secret.shown_as] = _derived_column(
                secret.show_sql(real),
                f"What {column._meta.db_column_name} is for; the rest of it is secret.",
            )
    return members


def _views() -> dict[type[Table], type[Table]]:
    """A view class per orgschema table: same name, no secret columns."""
    views: dict[type[Table], type[Table]] = {}
    for table in ALL_TABLES:  # foreign-key order: targets come first
        members = _view_members(table, views)
        layout = _LAYOUTS.get(table._meta.tablename, _DEFAULT_LAYOUT)
        if layout.readable is not None:
            members["get_readable"] = _readable(*layout.readable)
        members["_get_related_readable"] = classmethod(_related_readable)
        with warnings.catch_warnings():
            # "user" is a reserved word; Better-auth chose it, Piccolo quotes it.
            warnings.filterwarnings("ignore", message=".*`user` is a reserved keyword")
            views[table] = create_table_class(
                class_name=f"Studio{table.__name__}",
                class_kwargs={"tablename": table._meta.tablename},
                class_members=members,
            )
    return views


def _readable(template: str, column_name: str) -> classmethod:  # type: ignore[type-arg]
    def get_readable(cls: type[Table]) -> Readable:
        return Readable(template=template, columns=[getattr(cls, column_name)])

    return classmethod(get_readable)


class _QuotedReadable(Readable):
    """A readable whose alias is quoted.

    Piccolo names a foreign key's readable ``<column>_readable`` without
    quotes, so PostgreSQL folds ``userId_readable`` to ``userid_readable`` and
    Piccolo Admin, looking for the former, shows nothing.
    """

    def _get_string(self, operator: str) -> QueryString:
        return QueryString(
            f"{operator}('{self.template}', {self._columns_string}) AS \"{self.output_name}\""
        )


def _related_readable(cls: type[Table], column: ForeignKey[Any]) -> Readable:
    readable = Table._get_related_readable.__func__(cls, column)  # type: ignore[attr-defined]
    return _QuotedReadable(
        template=readable.template, columns=readable.columns, output_name=readable.output_name
    )


###############################################################################
# Writes


def _refusals(refused: Mapping[str, str]) -> Callable[[PiccoloCRUD, Request], None]:
    def refuse(piccolo_crud: PiccoloCRUD, request: Request) -> None:
        reason = refused.get(request.method)
        if reason is not None:
            raise HTTPException(status_code=405, detail=reason)

    return refuse


def _checks(view: type[Table], layout: _Layout) -> dict[str, Check]:
    """How each writable text column of ``view`` is checked, by column name."""
    checks: dict[str, Check] = {}
    for column in view._meta.columns:
        name = column._meta.name
        if isinstance(column._meta, _DerivedMeta) or not isinstance(column, (Text, Varchar)):
            continue
        if name in layout.checks:
            checks[name] = layout.checks[name]
        elif column._meta.primary_key:
            checks[name] = _text(MAX_ID_LENGTH)
        else:
            checks[name] = _text(_LIMITS.get(name, MAX_TEXT_LENGTH))
    for column in view._meta.foreign_key_columns:
        if column.value_type is str:
            checks[column._meta.name] = _text(MAX_ID_LENGTH)
    return checks


def _refuse(exc: InvalidInputError, name: str) -> HTTPException:
    # FastAPI's shape for a field error, which Piccolo Admin's pages show as
    # "<field> field - <message>".
    return HTTPException(
        status_code=422, detail=[{"loc": ["body", name], "msg": str(exc), "type": "value_error"}]
    )


def _write_hooks(checks: Mapping[str, Check]) -> list[Hook]:
    def checked(name: str, value: object) -> object:
        if value is None:
            return None  # NOT NULL is the database's to say, with its reason
        try:
            return checks[name](value, name)
        except InvalidInputError as exc:
            raise _refuse(exc, name) from exc

    def on_save(row: Table) -> Table:
        for name in checks:
            setattr(row, name, checked(name, getattr(row, name, None)))
        return row

    def on_patch(row_id: Any, values: dict[Any, Any]) -> dict[Any, Any]:
        return {
            column: checked(column._meta.name, value) if column._meta.name in checks else value
            for column, value in values.items()
        }

    return [Hook(HookType.pre_save, on_save), Hook(HookType.pre_patch, on_patch)]


###############################################################################
# Piccolo Admin's configuration


def table_configs() -> tuple[list[TableConfig], dict[str, StudioTable]]:
    """Piccolo Admin's configuration of every view, and what the HTTP layer needs of each."""
    configs: list[TableConfig] = []
    tables: dict[str, StudioTable] = {}
    for table, view in _views().items():
        layout = _LAYOUTS.get(view._meta.tablename, _DEFAULT_LAYOUT)
        configs.append(_table_config(view, layout))
        columns = frozenset(column._meta.name for column in view._meta.columns)
        tables[view._meta.tablename] = StudioTable(
            name=view._meta.tablename,
            columns=columns,
            hidden=frozenset(column._meta.name for column in table._meta.columns) - columns,
        )
    return configs, tables


def _table_config(view: type[Table], layout: _Layout) -> TableConfig:
    def columns(names: Sequence[str]) -> list[Column] | None:
        return [view._meta.get_column_by_name(name) for name in names] or None

    return TableConfig(
        table_class=view,
        visible_columns=columns(layout.columns),
        visible_filters=columns(layout.filters),
        link_column=view._meta.get_column_by_name(layout.link) if layout.link else None,
        order_by=[
            OrderBy(
                view._meta.get_column_by_name(name.lstrip("-")), ascending=not name.startswith("-")
            )
            for name in layout.order
        ]
        or None,
        menu_group=layout.group,
        validators=Validators(every=[_refusals(layout.refused)]) if layout.refused else None,
        hooks=_write_hooks(_checks(view, layout)),
    )
