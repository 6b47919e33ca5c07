//! Parse + map + validate throughput, without any AWS: `cargo run --release -p
//! integration-tests --bin bench_parse [rows]`. Prints rows/s on one thread and on two
//! (the file split in two halves, each half parsed and validated on its own thread),
//! and the peak RSS of this process; each the median of nine alternating rounds.
//!
//! Wall-clock scaling on a shared VM says as much about the VM as about the code, so it
//! also prints the CPU time each row cost in either mode (the kernel's per-thread
//! accounting: a row costing more on two threads points at something they contend for,
//! though time blocked on a lock or taken by the hypervisor is not counted), and a
//! control: the same work split between two processes, which share no memory, in the
//! same rounds.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
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

/// This thread's time on a CPU so far, in nanoseconds (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat names this thread's CPU time")
}

/// Parses `bytes` as the import does and returns (accepted, rejected, CPU ns spent).
fn run_timed(bytes: &[u8]) -> (usize, usize, u64) {
    let cpu = thread_cpu_ns();
    let (accepted, rejected) = run(bytes);
    (accepted, rejected, thread_cpu_ns() - cpu)
}

/// Two child processes; dropping it kills any still running, so a failed round never
/// leaves one parsing behind.
struct Children(Vec<(Child, BufReader<ChildStdout>)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads one line from a child and checks it is `expected`.
fn expect_line(out: &mut BufReader<ChildStdout>, expected: &str) {
    let mut line = String::new();
    out.read_line(&mut line).expect("read from child");
    assert_eq!(line.trim_end(), expected, "child process said");
}

/// The control: the two halves parsed by two processes at once, each warmed up first
/// and started together. Returns the rows per second of both together.
fn two_processes(rows: usize) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let spans = [(0, rows / 2), (rows / 2, rows - rows / 2)];
    let mut children = Children(Vec::new());
    for (offset, count) in spans {
        let mut child = Command::new(&exe)
            .args(["--child", &offset.to_string(), &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("child process");
        let out = BufReader::new(child.stdout.take().expect("piped"));
        children.0.push((child, out));
    }
    for (_, out) in &mut children.0 {
        expect_line(out, "ready");
    }
    let start = Instant::now();
    for (child, _) in &mut children.0 {
        writeln!(child.stdin.as_mut().expect("piped"), "go").expect("child alive");
    }
    for (_, out) in &mut children.0 {
        expect_line(out, "done");
    }
    let elapsed = start.elapsed();
    for (child, _) in &mut children.0 {
        assert!(child.wait().expect("child exit").success());
    }
    rows as f64 / elapsed.as_secs_f64()
}

/// One of `two_processes`' children: builds its rows and warms up, says `ready`, parses
/// when told `go` (and quits on anything else, such as its parent's end), says `done`.
fn child(offset: usize, count: usize) {
    let bytes = make_csv(count, offset);
    run(&make_csv(1000, 0));
    println!("ready");
    let mut go = String::new();
    if std::io::stdin().read_line(&mut go).is_err() || go.trim_end() != "go" {
        std::process::exit(1);
    }
    run(&bytes);
    println!("done");
}

fn run(bytes: &[u8]) -> (usize, usize) {
    let lists = BTreeSet::new();
    let options = ReadOptions {
        format: Format::Csv,
        delimiter: None,
        sheet: None,
    };
    // Like the import: the default region is read once per file, not per row.
    let default_region = Region::parse("GB");
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
            default_region,
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

/// A long-lived thread that parses what it is sent, as a runtime's worker threads
/// do: the threads are warm in both modes, so the figures compare one thread's work
/// with two threads' and not new threads with an old one.
struct Worker {
    jobs: mpsc::Sender<&'static [u8]>,
    results: mpsc::Receiver<(usize, usize, u64)>,
}

impl Worker {
    fn start() -> Worker {
        let (jobs, job_rx) = mpsc::channel::<&'static [u8]>();
        let (result_tx, results) = mpsc::channel();
        std::thread::spawn(move || {
            for bytes in job_rx {
                if result_tx.send(run_timed(bytes)).is_err() {
                    break;
                }
            }
        });
        Worker { jobs, results }
    }

    fn send(&self, bytes: &'static [u8]) {
        self.jobs.send(bytes).expect("worker alive");
    }

    fn result(&self) -> (usize, usize, u64) {
        self.results.recv().expect("worker alive")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, offset, count] = args.as_slice() {
        if flag == "--child" {
            child(
                offset.parse().expect("offset"),
                count.parse().expect("count"),
            );
            return;
        }
    }
    let rows: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(500_000);
    let whole: &'static [u8] = make_csv(rows, 0).leak();
    let halves: [&'static [u8]; 2] = [
        make_csv(rows / 2, 0).leak(),
        make_csv(rows - rows / 2, rows / 2).leak(),
    ];
    let workers = [Worker::start(), Worker::start()];
    let warm_up: &'static [u8] = make_csv(1000, 0).leak();
    for worker in &workers {
        worker.send(warm_up); // the phone metadata and each thread's patterns
        worker.result();
    }

    // This machine's speed drifts by tens of percent between seconds (a shared VM):
    // alternate one- and two-thread runs and report each one's median.
    let (mut ones, mut twos) = (Vec::new(), Vec::new());
    let (mut cpu_ones, mut cpu_twos) = (Vec::new(), Vec::new());
    let mut processes = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let cpu_ns;
        workers[0].send(whole);
        (accepted, rejected, cpu_ns) = workers[0].result();
        ones.push(rows as f64 / start.elapsed().as_secs_f64());
        cpu_ones.push(cpu_ns as f64 / rows as f64 / 1000.0);

        let start = Instant::now();
        for (worker, half) in workers.iter().zip(halves) {
            worker.send(half);
        }
        let (mut both_accepted, mut both_rejected, mut cpu_ns) = (0, 0, 0);
        for worker in &workers {
            let (a, r, ns) = worker.result();
            (both_accepted, both_rejected, cpu_ns) =
                (both_accepted + a, both_rejected + r, cpu_ns + ns);
        }
        assert_eq!(
            (both_accepted, both_rejected),
            (accepted, rejected),
            "two threads, same rows"
        );
        twos.push(rows as f64 / start.elapsed().as_secs_f64());
        cpu_twos.push(cpu_ns as f64 / rows as f64 / 1000.0);

        processes.push(two_processes(rows));
    }
    let (one, two) = (median(&mut ones), median(&mut twos));
    let (cpu_one, cpu_two) = (median(&mut cpu_ones), median(&mut cpu_twos));
    let process_scaling = median(&mut processes) / one;
    println!("parse_map_validate rows={rows} rounds={ROUNDS} accepted={accepted} rejected={rejected} one_thread_rows_per_s={one:.0} two_threads_rows_per_s={two:.0} scaling={:.2} cpu_us_per_row_one_thread={cpu_one:.2} cpu_us_per_row_two_threads={cpu_two:.2} two_processes_scaling={process_scaling:.2} peak_rss_mb={:.1}", two / one, peak_rss_mb());
}

const ROUNDS: usize = 9;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
