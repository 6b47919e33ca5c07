"""LocalStack ready hook (Docker only): deploy both built functions into LocalStack's
Lambda and wire the real S3 -> Lambda notification, so no relay is needed.

Runs after init.py (ready.d runs files in name order: `init.py`, then this one as
`zz_deploy_functions.py`, see docker-compose.yml). It expects the release binaries at
/opt/functions/<function>/bootstrap (the compose file mounts target/lambda there):
build them first with `make build-local` (x86_64, for Intel/AMD hosts) or `make build`
(arm64, for Apple silicon and Graviton hosts) and set FUNCTIONS_ARCH to match.

Idempotent: an existing function gets its code and configuration updated. The bucket's
`imports/` notification is switched from the relay's queue to the function; the rest of
the stack (table, bucket, queue) is init.py's.
"""
import io
import os
import time
import zipfile

from botocore.exceptions import ClientError

from local_aws import BUCKET, TABLE, client

ARCH = os.environ.get("FUNCTIONS_ARCH", "x86_64")
FUNCTIONS_DIR = os.environ.get("FUNCTIONS_DIR", "/opt/functions")
s3, lam, iam = (client(name) for name in ("s3", "lambda", "iam"))

FUNCTIONS = {
    # name: (timeout s, memory MB, environment)
    "import-contacts": (900, 1024, {"WRITE_CONCURRENCY": "16"}),
    "contact-events": (60, 256, {}),
}


def role_arn():
    name = "contact-book-local"
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
    try:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        return iam.get_role(RoleName=name)["Role"]["Arn"]


def zipped(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16  # executable
        with open(path, "rb") as f:
            z.writestr(info, f.read())
    return buf.getvalue()


def deploy(name, role):
    timeout, memory, extra = FUNCTIONS[name]
    binary = os.path.join(FUNCTIONS_DIR, name, "bootstrap")
    if not os.path.exists(binary):
        raise SystemExit(f"deploy_functions: {binary} is missing; build the functions first (make build-local)")
    env = {"Variables": {"CONTACTS_TABLE": TABLE, "CONTACTS_BUCKET": BUCKET,
                         "AWS_LAMBDA_LOG_FORMAT": "JSON", **extra}}
    code = zipped(binary)
    try:
        lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=role, Handler="bootstrap",
                            Code={"ZipFile": code}, Architectures=[ARCH], Timeout=timeout,
                            MemorySize=memory, Environment=env)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceConflictException":
            raise
        lam.update_function_code(FunctionName=name, ZipFile=code, Architectures=[ARCH])
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        lam.update_function_configuration(FunctionName=name, Timeout=timeout, MemorySize=memory, Environment=env)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    # Like the SAM template: two retries, then the event is dropped (logged by LocalStack).
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2,
                                         MaximumEventAgeInSeconds=21600)
    return lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


def notify(function_arn):
    try:
        lam.add_permission(FunctionName="import-contacts", StatementId="s3-imports", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{BUCKET}")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceConflictException":
            raise
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "Id": "imports-to-import-contacts",
            "LambdaFunctionArn": function_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "imports/"}]}},
        }]})


def main():
    if os.environ.get("DEPLOY_FUNCTIONS", "1") == "0":
        print("deploy_functions: DEPLOY_FUNCTIONS=0; the functions run under make up instead", flush=True)
        return
    started = time.monotonic()
    role = role_arn()
    arns = {name: deploy(name, role) for name in FUNCTIONS}
    notify(arns["import-contacts"])
    print(f"deploy_functions: {', '.join(arns)} deployed ({ARCH}) and s3://{BUCKET}/imports/ -> import-contacts "
          f"wired in {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
