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
"""
import threading

import moto
from moto.s3.models import S3Backend

PATCHED_FOR = "5.2.5"

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
    S3Backend.put_object = put_object
    S3Backend.complete_multipart_upload = complete_multipart_upload
