//! Parse + map + validate throughput, without any AWS: `cargo run --release -p
//! integration-tests --bin bench_parse [rows]`. Prints rows/s on one thread and on two
//! (the file split in two halves, each half parsed and validated on its own thread),
//! and the peak RSS of this process.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::time::Instant;

use contacts::domain::mapping::ColumnMap;
use contacts::domain::phone::Region;
use contacts::domain::upload::Channel;
use contacts::domain::validate::{validate_row, RowRules, Verdict};
use contacts::parse::{read_text, Format, ReadOptions, RowKind};

fn make_csv(rows: usize, offset: usize) -> Vec<u8> {
    let mut out = String::from("First Name,Last Name,Phone Number,Email,Plan,Signed Up\n");
    for i in offset..offset + rows {
        // A realistic mix: international, national (GB default), formatted, invalid.
        let phone = match i % 4 {
            0 => format!("+4474{:08}", i % 100_000_000),
            1 => format!("074{:02} {:06}", (i / 1_000_000) % 100, i % 1_000_000),
            2 => format!("+91 98{:03} {:05}", (i / 100_000) % 1000, i % 100_000),
            _ => format!("+31 6 {:08}", i % 100_000_000),
        };
        out.push_str(&format!(
            "Name{i},Family{i},{phone},user{i}@example.com,Gold,2022-10-31T19:30:00.000+05:30\n"
        ));
    }
    out.into_bytes()
}

fn run(bytes: &[u8]) -> (usize, usize) {
    let lists = BTreeSet::new();
    let options = ReadOptions {
        format: Format::Csv,
        delimiter: None,
        sheet: None,
    };
    let mut columns: Option<ColumnMap> = None;
    let (mut accepted, mut rejected) = (0usize, 0usize);
    read_text(bytes, &options, |row| {
        if row.kind == RowKind::Header {
            columns = ColumnMap::from_header(&row.cells, &[]).ok();
            return ControlFlow::Continue(());
        }
        let Some(map) = columns.as_ref() else {
            return ControlFlow::Break(());
        };
        let rules = RowRules {
            columns: map,
            channel: Channel::Whatsapp,
            default_region: Region::parse("GB"),
            lists: &lists,
            tags: &lists,
        };
        match validate_row(&row.cells, &rules) {
            Verdict::Accepted { .. } => accepted += 1,
            Verdict::Rejected { .. } => rejected += 1,
        }
        ControlFlow::Continue(())
    })
    .expect("readable");
    (accepted, rejected)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500_000);
    let whole = make_csv(rows, 0);
    let halves = [make_csv(rows / 2, 0), make_csv(rows - rows / 2, rows / 2)];
    run(&make_csv(1000, 0)); // load the phone metadata before timing

    let start = Instant::now();
    let (accepted, rejected) = run(&whole);
    let one = rows as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = halves
            .iter()
            .map(|half| scope.spawn(move || run(half)))
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
    });
    let two = rows as f64 / start.elapsed().as_secs_f64();
    let phones = phone_scaling(rows);
    println!("parse_map_validate rows={rows} accepted={accepted} rejected={rejected} one_thread_rows_per_s={one:.0} two_threads_rows_per_s={two:.0} scaling={:.2} peak_rss_mb={:.1}{phones}", two / one, peak_rss_mb());
}

/// The phone library alone, to see what limits scaling: its default database runs every
/// regex under one global mutex; a `Database` per thread (loaded from the crate's own
/// metadata XML, found in cargo's registry) has a cache of its own. Empty when the XML
/// cannot be found.
fn phone_scaling(rows: usize) -> String {
    use phonenumber::metadata::Database;
    let Some(xml) = metadata_xml() else {
        return String::new();
    };
    let load = Instant::now();
    let Ok(own) = Database::parse(&xml) else {
        return String::new();
    };
    let load_ms = load.elapsed().as_secs_f64() * 1000.0;
    let phones: Vec<String> = (0..rows)
        .map(|i| match i % 4 {
            0 => format!("+4474{:08}", i % 100_000_000),
            1 => format!("074{:02}{:06}", (i / 1_000_000) % 100, i % 1_000_000),
            2 => format!("+9198{:03}{:05}", (i / 100_000) % 1000, i % 100_000),
            _ => format!("+316{:08}", i % 100_000_000),
        })
        .collect();
    let gb = Some(phonenumber::country::Id::GB);
    let check = |db: Option<&Database>, part: &[String]| {
        let mut valid = 0usize;
        for phone in part {
            let parsed = match db {
                Some(db) => phonenumber::parse_with(db, gb, phone),
                None => phonenumber::parse(gb, phone),
            };
            if let Ok(number) = parsed {
                let ok = match db {
                    Some(db) => {
                        number.is_valid_with(db)
                            && number.number_type(db) != phonenumber::Type::Unknown
                    }
                    None => number.is_valid(),
                };
                valid += usize::from(ok);
            }
        }
        valid
    };
    let (first, second) = phones.split_at(rows / 2);
    let timed = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        rows as f64 / start.elapsed().as_secs_f64()
    };
    let global_one = timed(&|| {
        check(None, &phones);
    });
    let global_two = timed(&|| {
        std::thread::scope(|scope| {
            let a = scope.spawn(|| check(None, first));
            let b = scope.spawn(|| check(None, second));
            let _ = (a.join(), b.join());
        })
    });
    let own_one = timed(&|| {
        check(Some(&own), &phones);
    });
    let own_two = timed(&|| {
        std::thread::scope(|scope| {
            let a = scope.spawn(|| Database::parse(&xml).map(|db| check(Some(&db), first)));
            let b = scope.spawn(|| Database::parse(&xml).map(|db| check(Some(&db), second)));
            let _ = (a.join(), b.join());
        })
    });
    format!(
        " phones_global_db_one_thread_per_s={global_one:.0} phones_global_db_two_threads_per_s={global_two:.0} phones_own_db_one_thread_per_s={own_one:.0} phones_db_per_thread_two_threads_per_s={own_two:.0} metadata_load_ms={load_ms:.0}"
    )
}

fn metadata_xml() -> Option<String> {
    let home = std::env::var("CARGO_HOME")
        .ok()
        .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.cargo")))?;
    let src = std::path::Path::new(&home).join("registry/src");
    for index in std::fs::read_dir(src).ok()?.flatten() {
        for package in std::fs::read_dir(index.path()).ok()?.flatten() {
            let name = package.file_name().to_string_lossy().into_owned();
            if name.starts_with("phonenumber-0.3.10") {
                let xml = package.path().join("assets/PhoneNumberMetadata.xml");
                if let Ok(text) = std::fs::read_to_string(xml) {
                    return Some(text);
                }
            }
        }
    }
    None
}
