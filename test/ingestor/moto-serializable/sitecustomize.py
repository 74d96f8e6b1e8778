"""
Loaded by Python at start-up when this folder is on PYTHONPATH (see
`startSerializableMoto()` in ../support.ts). It makes moto's DynamoDB behave
as DynamoDB documents for what the usage ingestor relies on:

1. Requests are served one at a time (a global lock around moto's WSGI app).
   moto 5.2 serves requests on threads without locking; its TransactWriteItems
   snapshots the whole table and restores that snapshot when the transaction
   is cancelled, which erases writes other threads committed in between.
   DynamoDB itself isolates transactions (serializable), so serving requests
   one at a time is the faithful model; clients still send concurrently.
2. A transaction snapshots only the items it touches instead of deep-copying
   the whole table (moto's copy is O(table size) per call, which makes a table
   of 100,000 dedup marks unusable). The rollback restores those items.

Nothing else changes: conditions, cancellation reasons and updates are moto's.
"""
import copy as _copy
import sys
import threading

try:
    import moto.dynamodb.models as _models
    from moto.dynamodb.models.dynamo_type import DynamoType as _DynamoType
    from moto.dynamodb.models.table import Table as _Table
    from moto.moto_server import werkzeug_app as _werkzeug_app

    _lock = threading.RLock()
    _state = threading.local()

    _dispatch = _werkzeug_app.DomainDispatcherApplication.__call__

    def _serialized_call(self, environ, start_response):
        with _lock:
            return _dispatch(self, environ, start_response)

    _werkzeug_app.DomainDispatcherApplication.__call__ = _serialized_call

    class _CopyWithoutTables:
        """moto's `copy` module, except that tables are not deep-copied during a transaction."""

        def __getattr__(self, name):
            return getattr(_copy, name)

        def deepcopy(self, x, memo=None):
            if getattr(_state, "in_transaction", False) and isinstance(x, _Table):
                return x
            return _copy.deepcopy(x, memo)

    _models.copy = _CopyWithoutTables()
    _transact = _models.DynamoDBBackend.transact_write_items

    def _key_of(table, op):
        key = op.get("Key") or op.get("Item") or {}
        h = key.get(table.hash_key_attr)
        r = key.get(table.range_key_attr) if table.range_key_attr else None
        if h is None or (table.range_key_attr and r is None):
            return None
        return _DynamoType(h), (_DynamoType(r) if r is not None else None)

    def _transact_write_items(self, transact_items):
        with _lock:
            saved = []
            for ti in transact_items:
                try:
                    _, op = next(iter(ti.items()))
                    table = self.tables.get(op.get("TableName"))
                except Exception:
                    continue
                if table is None:
                    continue
                key = _key_of(table, op)
                if key is None:
                    continue
                h, r = key
                saved.append((table, h, r, _copy.deepcopy(table.get_item(h, r))))
            _state.in_transaction = True
            try:
                return _transact(self, transact_items)
            except BaseException:
                for table, h, r, item in reversed(saved):
                    if r is not None:
                        if item is None:
                            table.items[h].pop(r, None)
                        else:
                            table.items[h][r] = item
                    elif item is None:
                        table.items.pop(h, None)
                    else:
                        table.items[h] = item
                raise
            finally:
                _state.in_transaction = False

    _models.DynamoDBBackend.transact_write_items = _transact_write_items
except Exception as e:  # pragma: no cover - a Python without moto is not ours to patch
    sys.stderr.write(f"moto-serializable: not applied: {e}\n")
