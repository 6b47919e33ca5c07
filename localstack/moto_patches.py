"""Fixes to moto that the local stack needs, applied by emulator.py before it serves.
moto serves S3, SQS and EventBridge; DynamoDB is dynoxide's (emulator.py).

CompleteMultipartUpload: moto 5.2.5 stores the joined object with its own put_object,
which queues an `s3:ObjectCreated:Put` notification, and then queues the
`s3:ObjectCreated:CompleteMultipartUpload` one AWS sends: two events, with different
event times, for one upload. Every multipart upload (`aws s3 cp` of a file over 8 MB,
boto3's upload_file) was imported twice at once, under two import ids, the second
reporting the rows of the first as `unchanged`. Here the inner put_object stays quiet,
so only the CompleteMultipartUpload event is queued, as on AWS. Remove it when moto's
complete_multipart_upload passes `disable_notification=True` itself.

SQS queue depth: moto 5.2.5 finds a queue's visible messages, and counts its in-flight
and delayed ones, by asking each message whether it is visible and whether it is
delayed, each answer reading the clock twice; and every SendMessage computes all the
queue's attributes (for one flag), counts included. A send to a queue holding 1,000
messages cost 27 ms of CPU, 3,000 messages 70 ms, so a burst of webhooks slowed the
whole emulator down as it queued up (`make bench-webhooks`). Here the clock is read
once per question and the messages compared with it: the same answers, about 20 times
less work. Remove when moto's Queue reads the clock once itself.
Every use of a queue's attributes computed those three counts too, each a pass over
every message: a send (to read one flag), every message a receive returns (to read the
retention period), and a GetQueueAttributes once per name asked. A webhook burst waiting
on a paused relay (`make bench-webhooks`) made each send about 1 ms dearer by its end,
and draining a queue cost time quadratic in its depth. Here the counts are computed
only for a GetQueueAttributes that asks for them (or for All). And a delete found its
message in two passes, building a list of receipt handles for each message twice; here
one pass, comparing the handles in place. Same answers. Remove when moto's Queue counts
only when asked.

Names: moto turns an API's CamelCase names into Python's snake_case with a loop over
each character, for every attribute of every message sent and every field of every
answer serialised: a quarter of a SendMessageBatch's CPU. The function is pure, so its
answers are remembered (in every moto module that imported it).

Request routing: for every request, moto's server finds the backend of the request's
host by listing its own package directory (an `isdir` per entry) and then trying every
backend's URL patterns; half the emulator's CPU per SendMessage went there. The answer
for a host never changes while the server runs, so it is remembered per host.
"""
import functools
import json
import sys
import threading

import moto
import moto.backends
import moto.core.utils
from moto.core.utils import camelcase_to_underscores, unix_time_millis
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.models import S3Backend
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue, SQSBackend

PATCHED_FOR = "5.2.5"

_completing = threading.local()  # inside complete_multipart_upload, on this thread
_counting = threading.local()  # inside a GetQueueAttributes asking for counts, on this thread
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


# Message.visible: now > visible_at; Message.delayed: now < delayed_until (moto 5.2.5).
def messages(self):
    now = unix_time_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def approximate_number_of_messages(self):
    return len(messages(self))


def approximate_number_of_messages_not_visible(self):
    now = unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)


def approximate_number_of_messages_delayed(self):
    now = unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


COUNTS = frozenset(("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
                    "ApproximateNumberOfMessagesNotVisible"))
_attributes = Queue.attributes.fget
_get_queue_attributes = SQSBackend.get_queue_attributes


def attributes(self):
    if getattr(_counting, "now", False):
        return _attributes(self)
    # moto 5.2.5's Queue.attributes, less the counts.
    names = [*Queue.BASE_ATTRIBUTES, *(Queue.FIFO_ATTRIBUTES if self.fifo_queue else ()),
             *(Queue.KMS_ATTRIBUTES if self.kms_master_key_id else ())]
    result = {name: getattr(self, camelcase_to_underscores(name)) for name in names if name not in COUNTS}
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in result.items()}


def get_queue_attributes(self, queue_name, attribute_names):
    _counting.now = "All" in attribute_names or not COUNTS.isdisjoint(attribute_names)
    try:
        return _get_queue_attributes(self, queue_name, attribute_names)
    finally:
        _counting.now = False


def had_receipt_handle(self, receipt_handle):
    return receipt_handle == self.receipt_handle or receipt_handle in self._old_receipt_handles


def delete_message(self, receipt_handle):
    # moto 5.2.5's Queue.delete_message, in one pass, and in place under the queue's
    # lock: moto's rebuilds the message list outside any lock, so two deletes at once (the
    # relay's two pollers) could put each other's messages back, and a send appended
    # meanwhile was lost.
    if receipt_handle in self.deleted_messages:
        return  # already deleted: deleting again is fine
    with self._messages_lock:
        gone = [message for message in self._messages if message.had_receipt_handle(receipt_handle)]
        if not gone:
            raise ReceiptHandleIsInvalid()
        for message in gone:
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            self._messages.remove(message)


_get_backend_for_host = DomainDispatcherApplication.get_backend_for_host
_list_of_moto_modules = moto.backends.list_of_moto_modules


def get_backend_for_host(self, host):
    cache = self.__dict__.setdefault("_backend_for_host", {})
    if host not in cache:
        cache[host] = _get_backend_for_host(self, host)
    return cache[host]


def remember_names():
    original = moto.core.utils.camelcase_to_underscores
    cached = functools.lru_cache(maxsize=8192)(original)
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("moto") and \
                getattr(module, "camelcase_to_underscores", None) is original:
            module.camelcase_to_underscores = cached
    return cached


def apply():
    global camelcase_to_underscores
    if moto.__version__ != PATCHED_FOR:
        raise SystemExit(f"localstack/moto_patches.py was written for moto {PATCHED_FOR}, "
                         f"this is {moto.__version__}: check whether it is still needed")
    camelcase_to_underscores = remember_names()
    S3Backend.put_object = put_object
    S3Backend.complete_multipart_upload = complete_multipart_upload
    moto.backends.list_of_moto_modules = functools.cache(lambda: tuple(_list_of_moto_modules()))
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host
    Queue.messages = property(messages)
    Queue.attributes = property(attributes)
    SQSBackend.get_queue_attributes = get_queue_attributes
    Message.had_receipt_handle = had_receipt_handle
    Queue.delete_message = delete_message
    Queue.approximate_number_of_messages = property(approximate_number_of_messages)
    Queue.approximate_number_of_messages_not_visible = property(approximate_number_of_messages_not_visible)
    Queue.approximate_number_of_messages_delayed = property(approximate_number_of_messages_delayed)
