"""Fixes to moto that the local stack needs, applied by emulator.py before it serves.

TransactWriteItems: moto 5.2.5 deep-copies every table a transaction names before it
starts, so that it can roll back. With 5,000 items in the table one 100-item transaction
took 31 s (the same 100 items as single PutItems: 0.2 s), and the import writes its
contacts in transactions. This version keeps moto's semantics (same checks, same
errors, same cancellation reasons, all or nothing) but snapshots only the items the
transaction touches. Remove it when moto stops copying whole tables.

CompleteMultipartUpload: moto 5.2.5 stores the joined object with its own put_object,
which queues an `s3:ObjectCreated:Put` notification, and then queues the
`s3:ObjectCreated:CompleteMultipartUpload` one AWS sends: two events, with different
event times, for one upload. Every multipart upload (`aws s3 cp` of a file over 8 MB,
boto3's upload_file) was imported twice at once, under two import ids, the second
reporting the rows of the first as `unchanged`. Here the inner put_object stays quiet,
so only the CompleteMultipartUpload event is queued, as on AWS. Remove it when moto's
complete_multipart_upload passes `disable_notification=True` itself.
"""
import copy
import threading

import moto
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.s3.models import S3Backend

PATCHED_FOR = "5.2.5"


def _restore(snapshots):
    for table, hash_key, range_key, prior in reversed(snapshots):
        if table.has_range_key:
            if prior is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = prior
        elif prior is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = prior


def transact_write_items(self, transact_items):
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    snapshots = []
    target_items = set()
    errors = []  # (code, message, item) per operation, or (None, None, None)
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.get_table(table_name)
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in target_items:
                raise MultipleTransactionsException()
            target_items.add(unique)

            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition = get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type != "ConditionCheck":
                hash_key, range_key = self.get_keys_value(table, key)
                snapshots.append((table, hash_key, range_key, copy.deepcopy(current)))
            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                              expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition_expression,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition_expression,
                                 expression_attribute_names=names, expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            _restore(snapshots)
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 (moto reports any other failure as a reason)
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        _restore(snapshots)
        raise TransactionCanceledException(errors)


_completing = threading.local()  # inside complete_multipart_upload, on this thread
_put_object = S3Backend.put_object
_complete_multipart_upload = S3Backend.complete_multipart_upload


def put_object(self, *args, **kwargs):
    if getattr(_completing, "upload", False):
        kwargs["disable_notification"] = True  # complete_multipart_upload sends its own
    return _put_object(self, *args, **kwargs)


def complete_multipart_upload(self, *args, **kwargs):
    _completing.upload = True
    try:
        return _complete_multipart_upload(self, *args, **kwargs)
    finally:
        _completing.upload = False


def apply():
    if moto.__version__ != PATCHED_FOR:
        raise SystemExit(f"localstack/moto_patches.py was written for moto {PATCHED_FOR}, "
                         f"this is {moto.__version__}: check whether it is still needed")
    DynamoDBBackend.transact_write_items = transact_write_items
    S3Backend.put_object = put_object
    S3Backend.complete_multipart_upload = complete_multipart_upload
