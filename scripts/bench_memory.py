"""`make bench-memory`: peak RSS of the import function for big CSV and XLSX uploads.

Each file is imported end to end against the stack `make up` started (S3 notification,
relay, cargo lambda watch, moto and dynoxide). Before each file the function processes are restarted
so that their peak resident set size (VmHWM in /proc) belongs to that one import.

CSV_MB (default 100) and XLSX_MB (default 50) set the big files' sizes; a CSV a tenth
of CSV_MB is imported first, so the table shows whether memory grows with the file.
Rows are about 1 KB (a notes column of random text), so a 100 MB CSV is about 100,000
rows; every row is a new contact. Expect several minutes per file: the emulator takes a
few hundred writes per second; each wait lasts as long as the stack makes progress.
"""

import argparse
import io
import os
import random
import string
import uuid

from bench import import_file, restart_functions
from local_aws import function_processes  # bench.py put localstack/ on sys.path

CSV_MB = float(os.environ.get("CSV_MB", "100"))
XLSX_MB = float(os.environ.get("XLSX_MB", "50"))
ALPHABET = string.ascii_letters + string.digits + " "


def rows(seed):
    """Endless (name, phone, email, city, notes) rows, about 1 KB each, phones unique."""
    rng = random.Random(seed)
    i = 0
    while True:
        notes = "".join(rng.choices(ALPHABET, k=900))
        yield (f"Person {i}", f"+4474{i:08d}", f"person{i}@example.com", rng.choice(["Leeds", "São Paulo", "Zürich"]), notes)
        i += 1


def csv_file(megabytes):
    out = io.StringIO()
    out.write("Name,Phone,Email,City,Notes\n")
    count = 0
    for row in rows(1):
        if out.tell() >= megabytes * 1_000_000:
            break
        out.write(",".join(row) + "\n")
        count += 1
    return out.getvalue().encode(), count


def xlsx_file(megabytes):
    """A workbook of about `megabytes` (measured after saving), written in row batches."""
    from openpyxl import Workbook

    per_mb = None
    target = 2000
    while True:
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("Contacts")
        ws.append(["Name", "Phone", "Email", "City", "Notes"])
        source = rows(2)
        for _ in range(target):
            ws.append(list(next(source)))
        buf = io.BytesIO()
        wb.save(buf)
        size = buf.tell()
        if per_mb is None:
            per_mb = target / (size / 1_000_000)
            target = int(per_mb * megabytes)
            continue
        return buf.getvalue(), target


def peak_rss_mb():
    """The largest VmHWM (the kernel's own peak RSS) of the import-contacts processes
    under this checkout's watch. psutil finds them; it has no peak RSS, so that one
    line comes from /proc."""
    peak = 0
    for p in function_processes():
        try:
            with open(f"/proc/{p.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak / 1024


def measure(label, body, count, ext):
    restart_functions(release=False)
    account = "mem-" + uuid.uuid4().hex[:8]
    summary, _, wall, _, _ = import_file(account, body, name=f"bench-memory.{ext}")
    assert summary["status"] == "completed" and summary["rows"]["created"] == count, summary
    return (label, f"{len(body) / 1e6:.1f} MB", count, f"{wall:.0f} s", f"{peak_rss_mb():.1f}")


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    results = []
    small, small_rows = csv_file(CSV_MB / 10)
    results.append(measure("CSV, a tenth", small, small_rows, "csv"))
    del small
    big, big_rows = csv_file(CSV_MB)
    results.append(measure("CSV", big, big_rows, "csv"))
    del big
    book, book_rows = xlsx_file(XLSX_MB)
    results.append(measure("XLSX", book, book_rows, "xlsx"))
    header = ("file", "size", "rows", "import time", "peak RSS of the function (MB)")
    widths = [max(len(str(r[i])) for r in results + [header]) for i in range(len(header))]
    print()
    for r in [header] + results:
        print("  ".join(f"{v!s:{w}}" for v, w in zip(r, widths)))
    print("(functions are the debug builds cargo lambda watch runs; RSS is the process's VmHWM)")


if __name__ == "__main__":
    main()
