"""Prepared: a Core statement compiled once per dialect and run on the DBAPI cursor.

For the handful of statements every write runs (a screening, its flags and idempotency key;
an audit event and the chain head). SQLAlchemy's per-execution work (cache key, execution
context, result wrapping, events) cost several times the statement itself: in a profile of
``POST /v1/screenings`` it was most of the write (bench/README.md). The SQL text and every
value conversion still come from SQLAlchemy: the statement is compiled by the connection's
dialect, and each parameter goes through its column type's bind processor (UUIDs, enums,
UTC datetimes, JSON), exactly as ``Connection.execute`` would do. Only the execution is
direct, on the connection's DBAPI connection, inside the transaction SQLAlchemy began, so
BEGIN, SAVEPOINT, COMMIT and ROLLBACK are unchanged. A driver error is re-raised as
SQLAlchemy's exception (``IntegrityError`` ...) with the parameters hidden, as
``make_engine`` configures for every other statement.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, exc
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import SelectBase, UpdateBase

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    processors: tuple[tuple[str, Processor], ...]
    positional: bool
    constants: dict[str, Any]  # binds the statement fixes itself, e.g. the 1 of ``seq + 1``
    results: tuple[Processor | None, ...]  # one per selected or returned column


class Prepared:
    """``statement`` (a SELECT, or an INSERT or UPDATE with optional RETURNING) per dialect.

    Args:
        statement: The Core statement. Its bound parameters must all come from the caller:
            column defaults are not applied (every caller here passes every column).
        columns: For an ``insert(table)`` without values, the columns each row provides.
    """

    __slots__ = ("_by_dialect", "_columns", "_statement")

    def __init__(
        self, statement: UpdateBase | SelectBase, columns: Sequence[str] | None = None
    ) -> None:
        self._statement = statement
        self._columns = None if columns is None else list(columns)
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is not None:
            return found
        compiled = self._statement.compile(dialect=dialect, column_keys=self._columns)
        assert isinstance(compiled, SQLCompiler)
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        if self._columns is not None and set(names) != set(self._columns):
            raise ValueError(f"{self._statement} binds {names}, not the columns given")
        processors = []
        constants = {}
        for name in dict.fromkeys(names):
            bind = compiled.binds[name]
            if not bind.required and self._columns is None:
                constants[name] = bind.effective_value
            bind_type = bind.type
            processor = bind_type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors.append((name, processor))
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self._statement.exported_columns
        )
        found = _Compiled(
            compiled.string, names, tuple(processors), compiled.positional, constants, results
        )
        self._by_dialect[dialect.name] = found
        return found

    def _parameters(self, compiled: _Compiled, values: Mapping[str, Any]) -> Any:
        if compiled.constants or compiled.processors:
            values = compiled.constants | dict(values)  # one copy, never the caller's dict
            for name, processor in compiled.processors:
                values[name] = processor(values[name])
        if compiled.positional:
            return tuple(values[name] for name in compiled.names)
        return values

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run the statement with ``values``; return its first row (or None), converted."""
        compiled = self._compiled(connection.dialect)
        row = self._run(connection, compiled, self._parameters(compiled, values), many=False)
        if row is None:
            return None
        return tuple(
            value if process is None else process(value)
            for process, value in zip(compiled.results, row, strict=True)
        )

    def executemany(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row, in one driver call."""
        compiled = self._compiled(connection.dialect)
        parameters = [self._parameters(compiled, row) for row in rows]
        self._run(connection, compiled, parameters, many=True)

    @staticmethod
    def _run(connection: Connection, compiled: _Compiled, parameters: Any, *, many: bool) -> Any:
        """Execute on a fresh DBAPI cursor; the first result row, if the statement has one."""
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(compiled.sql, parameters)
                return None
            cursor.execute(compiled.sql, parameters)
            # By the statement, not ``cursor.description``: pipelined, a cursor has no
            # description until its results arrive, and fetching is what brings them.
            return cursor.fetchone() if compiled.results else None
        except connection.dialect.loaded_dbapi.Error as error:
            raise exc.DBAPIError.instance(
                compiled.sql,
                parameters,
                error,
                connection.dialect.loaded_dbapi.Error,
                hide_parameters=True,  # values are ciphertexts, key digests, client strings
                dialect=connection.dialect,
            ) from error
        finally:
            cursor.close()
