"""
moto's server (moto 5) with TransactWriteItems as DynamoDB documents it, for the local flows and
the tests.

moto takes a deep copy of every table a transaction writes to, and when a condition fails it puts
those copies back. Two problems follow: a write another request made to those tables meanwhile is
undone (moto serves requests on several threads), and each transaction costs time in proportion to
the whole table. DynamoDB does neither: "TransactWriteItems is a synchronous write operation that
groups up to 100 action requests ... The actions are completed atomically so that either all of
them succeed, or none of them succeeds", and a failed condition cancels the transaction without
touching anything ("TransactionCanceledException ... A condition in one of the condition
expressions is not met": https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).

So here a transaction evaluates every condition first, against the items as they are, and writes
only when all of them hold (under one lock, so that two transactions do not interleave). Its
validations (at most 100 actions, one action per entry, one action per item) are moto's own
exceptions. Everything else is moto as installed.

Usage: python moto_server.py -H 127.0.0.1 -p <port>   (the arguments of moto_server)
"""
import sys
import threading

from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend, get_filter_expression
from moto.server import main

_TRANSACTIONS = threading.Lock()


def _key(backend, op_type, op):
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self, transact_items):
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _TRANSACTIONS:
        actions, items = [], set()
        for entry in transact_items:
            if len(entry) != 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in ("ConditionCheck", "Put", "Delete", "Update"):
                raise ValueError("Unsupported transaction operation")
            key = _key(self, op_type, op)
            item = (op["TableName"], str(sorted(key.items())))
            if item in items:
                raise MultipleTransactionsException()
            items.add(item)
            actions.append((op_type, op, key))

        # Every condition against the items before the transaction.
        reasons, failed = [], False
        for op_type, op, key in actions:
            condition = op.get("ConditionExpression")
            if condition is None:
                reasons.append((None, None, None))
                continue
            current = self.get_item(op["TableName"], key)
            check = get_filter_expression(condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues"))
            if check.expr(current):
                reasons.append((None, None, None))
            else:
                old = None
                if current is not None and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                    old = current.to_json()["Attributes"]
                reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
                failed = True
        if failed:
            raise TransactionCanceledException(reasons)

        # All hold: the writes.
        for op_type, op, key in actions:
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"], expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key)
            elif op_type == "Update":
                self.update_item(
                    op["TableName"], key, update_expression=op["UpdateExpression"],
                    expression_attribute_names=names, expression_attribute_values=values,
                )


DynamoDBBackend.transact_write_items = transact_write_items

if __name__ == "__main__":
    main(sys.argv[1:])
