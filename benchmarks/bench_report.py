"""Benchmark (issue 16): the whole client report on a large foreign-format export, end to end, as a
consultant runs it, beside DuckDB's own time on the same file.

Run:  .venv/bin/python benchmarks/bench_report.py [--rows 10000000] [--customers 1000000] [--process btyd|uniform]
                                                  [--parquet]
                                                  [--workdir DIR] [--data F --mapping M]

Data: the Polish shop's export (:func:`helpers.report.exports.polish_shop`'s formats: ``;``-separated,
UTF-8 with a byte-order mark, day-first dates ``02.01.2023 17:42``, amounts ``1 234,50 zł`` with
narrow no-break spaces, refunds as ``(12,50 zł)`` and ``−12,50 zł``, ids with leading zeros;
refunds netted) with `--rows` rows for about `--customers` customers, buying by the sample
company's BG/NBD and Gamma-Gamma processes (:data:`BTYD`; ``--process uniform``: polish_shop's own
steady buyers, on which no lifetime values can be fitted), written once into `--workdir`
(default: a temporary folder, deleted after) and reused when it is there; nothing large is
committed. ``--data``/``--mapping`` time any other export instead. Issue 28's sections are on:
the export maps the order channel (the first order's channel is the acquisition attribute), and
a marketing spend file per month and channel is written beside it and named in a copy of the
mapping (:func:`with_sections`; ``--no-sections``: the export's own mapping). ``--parquet``
writes a typed Parquet file instead: by default from a hash of the row number (uniform buyers
who never leave, :func:`make_parquet`), with ``--process btyd`` from the same BTYD processes as
the CSV, part by part (:func:`btyd_parquet`; the sections on as for the CSV).

Measured:

* ``client report``: ``python -m helpers.report --data … --mapping … --name bench`` in a child
  process: wall time, and the peak of the summed resident memory of the process tree (the
  command and the notebook's kernel) sampled every 50 ms; the report's own stage lines (read and
  validate, analyse, render) are printed as it ran them;
* ``DuckDB SQL``: DuckDB alone, in a child process, reading the same file with the same parsing
  (day-first dates, Polish amounts) and computing the per-customer aggregates and the monthly
  cohort counts: the floor for the read + aggregate part. A Parquet export's baseline reads its
  typed columns (those its mapping names) and computes the same aggregates; another file has none.

Targets (issue 16): 10 M rows in ≤ 45 s with peak ≤ 2 GB on 2 cores. Issue 31: the whole report
≤ 3× DuckDB's read + aggregate of the same file, peak ≤ 1.2 GB at 10 M rows. On a shared, loaded
machine ``--pairs N`` runs the two N times alternately (report, DuckDB, report, DuckDB, …) and
reports the median of the per-pair ratios; each command runs under ``/usr/bin/time -v`` when it
exists (its maximum resident set: the largest single process of the tree).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil
from _common import machine

ROOT = Path(__file__).resolve().parents[1]


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, bytes."""
    total = 0
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # a process of the tree ended while listed (the run is ending)
        tree = [proc]
    for p in tree:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


TIME_V = "/usr/bin/time"


def max_rss_mb(err: str) -> float | None:
    """The 'Maximum resident set size' of ``/usr/bin/time -v`` in `err`, MB (None without it)."""
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return int(m.group(1)) * 1024 / 1e6 if m else None


def cpu_s(err: str) -> float | None:
    """User + system CPU seconds of ``/usr/bin/time -v`` in `err` (the command and the children
    it waited for: the notebook's kernel), None without it."""
    m = [re.search(rf"{k} time \(seconds\): ([\d.]+)", err) for k in ("User", "System")]
    return float(m[0].group(1)) + float(m[1].group(1)) if all(m) else None


def run_measured(cmd: list[str]) -> tuple[float, float, str, int]:
    """(wall seconds, peak tree RSS in MB, stderr, exit code) of `cmd` (under ``/usr/bin/time
    -v`` when it exists: its report is at the end of stderr)."""
    if os.path.exists(TIME_V):
        cmd = [TIME_V, "-v", *cmd]
    start = time.perf_counter()
    child = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc, peak, done = psutil.Process(child.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = child.communicate()
    done.set()
    t.join()
    return time.perf_counter() - start, peak[0] / 1e6, err, child.returncode


PARQUET_SQL = """
COPY (SELECT 'Z' || i::VARCHAR AS zamowienie,
             'K' || lpad((hash(i) % {customers})::VARCHAR, 8, '0') AS klient,
             TIMESTAMP '2023-01-01' + to_seconds((hash(i * 7 + 1) % (3 * 365 * 86400))::BIGINT) AS czas,
             round(5 + (hash(i * 13 + 5) % 20000) / 100.0, 2) AS kwota
      FROM range({rows}) t(i))
TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)
"""
PARQUET_MAPPING = """columns: {customer_id: klient, order_date: czas, amount: kwota, order_id: zamowienie}
currency: PLN
"""


def make_parquet(
    folder: Path, rows: int, customers: int, process: str = "uniform"
) -> tuple[Path, Path]:
    """A large export as Parquet (typed timestamps and amounts, text ids). `process` 'uniform'
    (the default, as before it could be chosen): written by DuckDB from a deterministic hash of
    the row number: uniform dates over 2023-2025, amounts 5-205 (every customer buys at one rate
    and never leaves: the purchase models sit on a ridge); 'btyd': :func:`btyd_parquet`."""
    import duckdb

    if process == "btyd":
        return btyd_parquet(folder, rows, customers)
    data, mapping = folder / f"zamowienia_{rows}.parquet", folder / "parquet.yaml"
    mapping.write_text(PARQUET_MAPPING, encoding="utf-8")
    if data.exists():
        print(f"reusing {data} ({data.stat().st_size / 1e6:,.0f} MB)")
        return data, mapping
    print(f"writing a {rows:,}-row Parquet export into {folder} …", flush=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(PARQUET_SQL.format(rows=rows, customers=customers, path=data))
    return data, mapping


#: The rows :func:`btyd_parquet` generates at a time (each part a company of its own, from
#: its own seed, with the same processes): 10M rows hold about 3 GB in pandas while written.
BTYD_PART_ROWS = 10_000_000

BTYD_PARQUET_MAPPING = """columns:
  customer_id: klient
  order_date: czas
  amount: kwota
  order_id: zamowienie
  channel: kanal
currency: PLN
refunds: net
"""


def btyd_parquet(folder: Path, rows: int, customers: int) -> tuple[Path, Path]:
    """The export of :func:`make_export`'s 'btyd' process as Parquet: orders from
    :func:`helpers.synth.generate_orders` (BG/NBD purchases with dropout, Gamma-Gamma spend,
    :data:`BTYD`), amounts in zł with 4 % refunds of a third, the order channel; typed columns
    (text ids ``Z…`` and ``K…``, a timestamp, a double) written part by part
    (:data:`BTYD_PART_ROWS` rows each, seeds 11, 12, …; customer and order numbers continued
    from one part to the next), so 100M rows never sit in memory at once. The purchase models
    have heterogeneity and dropout to estimate, unlike the uniform file's (benchmarks/README.md,
    the 100M runs)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT))
    from helpers import synth

    data, mapping = folder / f"zamowienia_btyd_{rows}.parquet", folder / "parquet_btyd.yaml"
    mapping.write_text(BTYD_PARQUET_MAPPING, encoding="utf-8")
    if data.exists():
        print(f"reusing {data} ({data.stat().st_size / 1e6:,.0f} MB)")
        return data, mapping
    print(f"writing a {rows:,}-row BTYD Parquet export for {customers:,} customers into "
          f"{folder} …", flush=True)  # fmt: skip
    cfg = synth.SynthConfig(**BTYD)
    tmp = data.with_suffix(".partial")
    written = people = 0
    with pq.ParquetWriter(tmp, pa.schema([
        ("zamowienie", pa.string()), ("klient", pa.string()), ("czas", pa.timestamp("us")),
        ("kwota", pa.float64()), ("kanal", pa.string()),
    ])) as out:  # fmt: skip
        for part in range(-(-rows // BTYD_PART_ROWS)):
            n = min(BTYD_PART_ROWS, rows - written)
            o = synth.generate_orders(n, seed=11 + part, cfg=cfg, per_customer=rows / customers)
            rng = np.random.default_rng(11 + part)
            cents = np.round(o["amount"].to_numpy() * 400).astype(np.int64)  # EUR -> zł
            cents = np.where(rng.random(n) < 0.04, -(cents // 3), cents)
            klient = pa.array(o["customer_id"].to_numpy() + people).cast(pa.string())
            order = pa.array(o["order_id"].to_numpy() + written).cast(pa.string())
            out.write_table(pa.table({
                "zamowienie": pc.binary_join_element_wise("Z", order, ""),
                "klient": pc.binary_join_element_wise("K", klient, ""),
                "czas": pa.array(o["order_date"].to_numpy("datetime64[us]")),
                "kwota": pa.array(cents / 100),
                "kanal": pa.array(o["channel"].astype(str).to_numpy()),
            }), row_group_size=1_000_000)  # fmt: skip
            written += n
            people += int(o["customer_id"].max())
            del o, cents, klient, order
    tmp.rename(data)
    print(f"  {written:,} rows, {data.stat().st_size / 1e6:,.0f} MB")
    return data, mapping


#: The benchmark's purchase process: the sample company's BG/NBD and Gamma-Gamma with shorter
#: gaps between purchases and rarer dropout (about 12.6 orders per customer over the three
#: years), so that 10M rows are 1M customers, as in the issue's export, and the lifetime-value
#: models have heterogeneity and dropout to estimate.
BTYD = {"bgnbd_alpha": 2.0, "bgnbd_b": 8.0}


#: The marketing spend of the benchmark's shop (issue 28's cost sections): zł per month and order
#: channel (the channel the export maps), about 30 zł per customer it acquires.
SPEND_PER_MONTH = {"app": 150_000.0, "web": 300_000.0, "marketplace": 90_000.0}


def with_sections(folder: Path, data: Path, mapping: Path) -> Path:
    """The mapping `mapping` with issue 28's acquisition sections all on: a marketing spend file
    (``wydatki.csv``: month, channel, spend for every month of the export `data`, seeded noise
    around :data:`SPEND_PER_MONTH`) beside it, named in a copy of the mapping
    (``sklep_sekcje.yaml``); the channel is mapped already. Written once; the export and its
    mapping are not changed."""
    import duckdb
    import numpy as np
    import pandas as pd

    suffix = "_parquet" if data.suffix == ".parquet" else ""
    spend, out = folder / f"wydatki{suffix}.csv", folder / f"sklep_sekcje{suffix}.yaml"
    if not spend.exists():
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        dates = (  # the Parquet file's timestamps, or the CSV's day-first texts
            f"SELECT czas AS d FROM read_parquet('{data}')" if data.suffix == ".parquet" else
            f"SELECT strptime(data, '%d.%m.%Y %H:%M') AS d FROM "
            f"read_csv('{data}', delim = ';', all_varchar = true)"
        )  # fmt: skip
        first, last = con.sql(f"SELECT min(d), max(d) FROM ({dates})").fetchall()[0]
        months = pd.date_range(first.replace(day=1), last, freq="MS").strftime("%Y-%m-%d")
        rng = np.random.default_rng(28)
        rows = [(m, ch, round(base * rng.uniform(0.8, 1.2), 2))
                for m in months for ch, base in SPEND_PER_MONTH.items()]  # fmt: skip
        pd.DataFrame(rows, columns=["month", "channel", "spend"]).to_csv(spend, index=False)
    if not out.exists():
        text = mapping.read_text(encoding="utf-8").rstrip("\n")
        out.write_text(text + f"\ntables:\n  marketing_spend:\n    file: {spend.name}\n"
                       "    columns: {month: month, channel: channel, spend: spend}\n",
                       encoding="utf-8")  # fmt: skip
    return out


def make_export(
    folder: Path, rows: int, customers: int, process: str = "btyd"
) -> tuple[Path, Path]:
    """The Polish shop's export (:func:`helpers.report.exports.polish_shop`'s formats and mapping) with
    `rows` rows for about `customers` customers. `process` 'btyd': orders from
    :func:`helpers.synth.generate_orders` (BG/NBD purchases, Gamma-Gamma spend in zł, 4 % of
    rows refunds of a third; :data:`BTYD`); 'uniform': ``polish_shop`` itself, every customer
    buying at one steady rate to the end (no dropout: the purchase models cannot be fitted, and
    the report says so)."""
    data, mapping = folder / f"zamówienia_{process}.csv", folder / "sklep.yaml"
    if data.exists() and mapping.exists():
        print(f"reusing {data} ({data.stat().st_size / 1e6:,.0f} MB)")
        return data, mapping
    print(f"writing a {rows:,}-row export for {customers:,} customers into {folder} …", flush=True)
    sys.path.insert(0, str(ROOT))
    from helpers.report import exports

    if process == "uniform":
        e = exports.polish_shop(folder, customers=customers, mean_orders=rows / customers)
        e.path.rename(data)
        print(f"  {len(e.table):,} rows, {data.stat().st_size / 1e6:,.0f} MB")
        return data, e.mapping_path
    with tempfile.TemporaryDirectory() as small:  # the shop's mapping, from a small export
        e = exports.polish_shop(Path(small), customers=10)
        mapping.write_text(e.mapping_path.read_text(encoding="utf-8"), encoding="utf-8")
    import numpy as np
    import pandas as pd

    from helpers import synth

    cfg = synth.SynthConfig(**BTYD)
    o = synth.generate_orders(rows, seed=11, cfg=cfg, per_customer=rows / customers)
    rng = np.random.default_rng(11)
    cents = pd.Series(np.round(o["amount"].to_numpy() * 400).astype(np.int64))  # EUR -> zł
    refund = rng.random(len(o)) < 0.04
    cents = cents.where(~refund, -(cents // 3))
    ids = o["customer_id"].astype(str)
    ids = ids.where(o["customer_id"] % 2 == 1, ids.str.zfill(8))  # leading zeros: text ids
    text = exports._pl_money(cents, "paren").where(
        np.arange(len(o)) % 2 == 0, exports._pl_money(cents, "minus")
    )
    table = pd.DataFrame({
        "nr_zamówienia": (50000 + o["order_id"]).astype(str),
        "nr_klienta": ids,
        "data": o["order_date"].dt.strftime("%d.%m.%Y %H:%M"),
        "kwota": text,
        "kanał": o["channel"],
    })  # fmt: skip
    del o, text, ids
    table.to_csv(data, index=False, sep=";", encoding="utf-8-sig")
    print(f"  {len(table):,} rows, {data.stat().st_size / 1e6:,.0f} MB")
    return data, mapping


#: The baselines' aggregates: per customer, and the monthly acquisition cohorts' counts.
_AGGREGATES = textwrap.dedent(
    """
    con.execute('''SELECT customer_id, min(order_date), max(order_date), count(*), sum(amount)
                   FROM o GROUP BY ALL''').fetchall()
    con.execute('''WITH a AS (SELECT DISTINCT customer_id, date_trunc('month', order_date) p FROM o),
                        f AS (SELECT customer_id, min(p) c FROM a GROUP BY ALL)
                   SELECT c, datediff('month', c, p), count(*) FROM a JOIN f USING (customer_id)
                   GROUP BY ALL''').fetchall()
    """
)

DUCKDB_SQL = (
    textwrap.dedent(
        """
    import sys, duckdb
    con = duckdb.connect(); con.execute("SET enable_progress_bar = false")
    con.execute(f'''CREATE TABLE o AS SELECT nr_klienta AS customer_id,
        strptime(data, '%d.%m.%Y %H:%M') AS order_date,
        CASE WHEN k LIKE '(%' OR k LIKE '−%' THEN -1 ELSE 1 END
          * CAST(replace(regexp_replace(k, '[()−\\u202f zł]', '', 'g'), ',', '.') AS DOUBLE) AS amount
        FROM (SELECT *, kwota AS k FROM read_csv('{sys.argv[1]}', delim = ';', all_varchar = true))''')
    """
    )
    + _AGGREGATES
)

#: The same baseline on a typed Parquet export (nothing to parse): its mapped customer, date and
#: amount columns, named after the file on the command line (:func:`baseline`).
DUCKDB_PARQUET_SQL = (
    textwrap.dedent(
        """
    import sys, duckdb
    path, c, d, a = sys.argv[1:5]
    con = duckdb.connect(); con.execute("SET enable_progress_bar = false")
    con.execute(f'''CREATE TABLE o AS SELECT "{c}" AS customer_id,
        CAST("{d}" AS TIMESTAMP) AS order_date, CAST("{a}" AS DOUBLE) AS amount
        FROM read_parquet('{path}')''')
    """
    )
    + _AGGREGATES
)


def baseline(py: str, data: Path, mapping: Path) -> list[str] | None:
    """The DuckDB baseline's command for `data`: :data:`DUCKDB_SQL` for the Polish CSV,
    :data:`DUCKDB_PARQUET_SQL` for a Parquet file (the columns its mapping names); None for
    another file."""
    if data.suffix == ".csv":
        return [py, "-c", DUCKDB_SQL, str(data)]
    if data.suffix == ".parquet":
        import yaml

        cols = yaml.safe_load(mapping.read_text(encoding="utf-8"))["columns"]
        names = [cols[k] for k in ("customer_id", "order_date", "amount")]
        return [py, "-c", DUCKDB_PARQUET_SQL, str(data), *names]
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--workdir", help="folder for the generated export (kept, reused)")
    ap.add_argument(
        "--parquet", action="store_true",
        help="generate the export as Parquet (typed columns) rather than the Polish CSV",
    )  # fmt: skip
    ap.add_argument(
        "--process", choices=["btyd", "uniform"],
        help="the generated customers' buying: btyd (BG/NBD with dropout; the CSV's default) or "
        "uniform (no dropout, the purchase models on a ridge; the Parquet file's default: "
        "helpers.report.exports.polish_shop scaled for the CSV, a hash of the row number for Parquet)",
    )  # fmt: skip
    ap.add_argument("--data", help="time this export instead of a generated one")
    ap.add_argument(
        "--pairs", type=int, default=1,
        help="run the report and the DuckDB baseline this many times, alternately (paired)",
    )  # fmt: skip
    ap.add_argument("--python", default=sys.executable, help="the Python that runs the report")
    ap.add_argument("--mapping", help="the mapping of --data")
    ap.add_argument(
        "--no-sections", action="store_true",
        help="the export's own mapping, without the marketing spend file (issue 28's cost "
        "sections off; the default maps it: benchmarks/README.md, issues 28 and 31)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        folder = Path(args.workdir) if args.workdir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.data:
            data, mapping = Path(args.data).resolve(), Path(args.mapping).resolve()
        elif args.parquet:
            process = args.process or "uniform"
            data, mapping = make_parquet(folder, args.rows, args.customers, process)
        else:
            process = args.process or "btyd"
            data, mapping = make_export(folder, args.rows, args.customers, process)
        if not args.data and process == "btyd" and not args.no_sections:
            mapping = with_sections(folder, data, mapping)
        py = args.python
        cmd = [py, "-m", "helpers.report", "--data", str(data), "--mapping", str(mapping),
               "--name", "bench", "--reports-dir", str(Path(tmp) / "reports"), "--overwrite"]  # fmt: skip
        duck_cmd = baseline(py, data, mapping)
        paired = duck_cmd is not None  # a baseline for this file: the Polish CSV or Parquet
        size = data.stat().st_size / 1e6
        rows: list[tuple[float, float, float | None, float, float, float | None]] = []
        for i in range(args.pairs):
            secs, peak, err, code = run_measured(cmd)
            print(f"pair {i + 1}: report")
            print(textwrap.indent(err.strip(), "  | "))
            if code != 0:
                print(f"the report failed (exit {code})")
                return 1
            duck_s, duck_peak, duck_err, duck_code = (
                run_measured(duck_cmd) if duck_cmd else (0, 0, "", 0)
            )
            if duck_code != 0:
                print(duck_err)
            rows.append((secs, peak, max_rss_mb(err), duck_s, duck_peak, max_rss_mb(duck_err)))
            ratio = f", ratio {secs / duck_s:.2f}" if paired else ""
            duck = f", DuckDB {duck_s:.1f} s" if paired else " (no DuckDB baseline for this file)"
            print(f"pair {i + 1}: report {secs:.1f} s{duck}{ratio}", flush=True)
            cpu, duck_cpu = cpu_s(err), cpu_s(duck_err)
            if cpu and duck_cpu:
                print(f"pair {i + 1}: CPU (user + sys) report {cpu:.1f} s, DuckDB {duck_cpu:.1f} s, "
                      f"ratio {cpu / duck_cpu:.2f}; load average {os.getloadavg()[0]:.1f}",
                      flush=True)  # fmt: skip
        print(f"\n{'variant':<44} {'time':>9} {'peak RSS (tree)':>16} {'max RSS (time -v)':>18}")
        for label, k in (
            ("client report (python -m helpers.report)", 0),
            ("DuckDB SQL (read, parse, aggregate)", 3),
        ):
            if k == 3 and not paired:
                continue
            t = statistics.median(r[k] for r in rows)
            tree = max(r[k + 1] for r in rows)
            one = [r[k + 2] for r in rows if r[k + 2] is not None]
            print(
                f"{label:<44} {t:>8.1f}s {tree:>13,.0f} MB {max(one) if one else float('nan'):>15,.0f} MB"
            )
        if paired:
            ratios = sorted(r[0] / r[3] for r in rows)
            print(f"paired ratios report / DuckDB: {', '.join(f'{x:.2f}' for x in ratios)}; "
                  f"median {statistics.median(ratios):.2f} ({len(rows)} pairs)")  # fmt: skip
        print(
            f"file: {data.name}, {size:,.0f} MB; load average at the end: {os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
