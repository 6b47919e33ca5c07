//! Parse + map + validate throughput, without any AWS: `cargo run --release -p
//! integration-tests --bin bench_parse [rows]`. Prints rows/s on one thread and on two,
//! and the peak RSS of this process; each the median of nine alternating rounds (and a
//! scaling is the median of each round's ratio of its two modes).
//!
//! The rows come in chunks of 5,000 (each a CSV file with its header). One thread parses
//! every chunk; two threads take the next chunk in turn, as a parallel import would, so
//! that neither waits idle while the other finishes. The two vCPUs of this VM do not run
//! at the same speed from one second to the next, and with the file cut in two fixed
//! halves the slower one sets the pace: that split is printed too (`halves_scaling`).
//!
//! Wall-clock scaling on a shared VM says as much about the VM as about the code, so it
//! also prints the CPU time each row cost in either mode (the kernel's per-thread
//! accounting: a row costing more on two threads points at something they contend for,
//! though time blocked on a lock or taken by the hypervisor is not counted), and a
//! control: the same chunks taken in turn by two processes, which share no memory, in
//! the same rounds.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use contacts::domain::channel::Channel;
use contacts::domain::mapping::ColumnMap;
use contacts::domain::phone::Region;
use contacts::domain::validate::{validate_row, RowRules, Verdict};
use contacts::parse::{read_text, Format, ReadOptions, RowKind};

const ROUNDS: usize = 9;
const CHUNK_ROWS: usize = 5_000;

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

/// `rows` rows as CSV files of `CHUNK_ROWS` rows each; the same for any caller.
fn make_chunks(rows: usize) -> Vec<Vec<u8>> {
    (0..rows.div_ceil(CHUNK_ROWS))
        .map(|i| {
            let offset = i * CHUNK_ROWS;
            make_csv(CHUNK_ROWS.min(rows - offset), offset)
        })
        .collect()
}

/// This thread's time on a CPU so far, in nanoseconds (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat names this thread's CPU time")
}

/// Rows accepted and rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    accepted: usize,
    rejected: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
    }
}

/// Chunks shared by whoever works on them: each worker takes the next untaken one.
#[derive(Clone)]
struct Job {
    chunks: &'static [&'static [u8]],
    next: Arc<AtomicUsize>,
}

impl Job {
    fn new(chunks: &'static [&'static [u8]]) -> Job {
        Job {
            chunks,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn take(&self) -> Option<&'static [u8]> {
        self.chunks
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .copied()
    }
}

/// A long-lived thread that parses what it is sent, as a runtime's worker threads
/// do: the threads are warm in both modes, so the figures compare one thread's work
/// with two threads' and not new threads with an old one.
struct Worker {
    jobs: mpsc::Sender<Job>,
    results: mpsc::Receiver<(Counts, u64)>,
}

impl Worker {
    fn start() -> Worker {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (result_tx, results) = mpsc::channel();
        std::thread::spawn(move || {
            for job in job_rx {
                let cpu = thread_cpu_ns();
                let mut counts = Counts::default();
                while let Some(chunk) = job.take() {
                    counts += run(chunk);
                }
                if result_tx.send((counts, thread_cpu_ns() - cpu)).is_err() {
                    break;
                }
            }
        });
        Worker { jobs, results }
    }
}

/// Runs one job per worker at once; returns rows/s of all of them together, their
/// counts and their CPU time.
fn run_on(workers: &[&Worker], jobs: &[Job], rows: usize) -> (f64, Counts, u64) {
    let start = Instant::now();
    for (worker, job) in workers.iter().zip(jobs) {
        worker.jobs.send(job.clone()).expect("worker alive");
    }
    let (mut counts, mut cpu_ns) = (Counts::default(), 0);
    for worker in workers {
        let (c, ns) = worker.results.recv().expect("worker alive");
        counts += c;
        cpu_ns += ns;
    }
    (rows as f64 / start.elapsed().as_secs_f64(), counts, cpu_ns)
}

/// Two child processes; dropping it kills any still running, so a failed round never
/// leaves one parsing behind.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads one line from a child.
fn read_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).expect("read from child");
    line.trim_end().to_string()
}

/// Hands a child chunk numbers until none is left, then tells it to end; returns the
/// counts it reported.
fn feed(
    mut to: ChildStdin,
    mut from: BufReader<ChildStdout>,
    next: &AtomicUsize,
    chunks: usize,
) -> Counts {
    let mut counts = Counts::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= chunks {
            writeln!(to, "end").expect("child alive");
            return counts;
        }
        writeln!(to, "{i}").expect("child alive");
        let line = read_line(&mut from);
        let parsed = line
            .strip_prefix("done ")
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(a, r)| Some((a.parse().ok()?, r.parse().ok()?)));
        let Some((accepted, rejected)) = parsed else {
            panic!("child process said {line:?}, not `done ACCEPTED REJECTED`");
        };
        counts += Counts { accepted, rejected };
    }
}

/// The control: the same chunks taken in turn by two processes, each warmed up first.
/// Returns the rows per second of both together and their counts.
fn two_processes(rows: usize) -> (f64, Counts) {
    let exe = std::env::current_exe().expect("own path");
    let chunks = rows.div_ceil(CHUNK_ROWS);
    let mut children = Children(Vec::new());
    let mut pipes = Vec::new();
    for _ in 0..2 {
        let mut child = Command::new(&exe)
            .args(["--child", &rows.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("child process");
        let to = child.stdin.take().expect("piped");
        let from = BufReader::new(child.stdout.take().expect("piped"));
        children.0.push(child);
        pipes.push((to, from));
    }
    for (_, from) in &mut pipes {
        assert_eq!(read_line(from), "ready", "child process said");
    }
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let counts = std::thread::scope(|scope| {
        let feeders: Vec<_> = pipes
            .into_iter()
            .map(|(to, from)| scope.spawn(|| feed(to, from, &next, chunks)))
            .collect();
        let mut counts = Counts::default();
        for feeder in feeders {
            counts += feeder.join().expect("feeder thread");
        }
        counts
    });
    let elapsed = start.elapsed();
    for child in &mut children.0 {
        assert!(child.wait().expect("child exit").success());
    }
    (rows as f64 / elapsed.as_secs_f64(), counts)
}

/// One of `two_processes`' children: builds the chunks and warms up, says `ready`, then
/// parses each chunk it is told the number of and says `done ACCEPTED REJECTED`, until
/// told `end` (and quits with an error on anything else, such as its parent's end).
fn child(rows: usize) {
    let chunks = make_chunks(rows);
    run(&make_csv(1000, 0));
    println!("ready");
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        if line == "end" {
            return;
        }
        let Some(chunk) = line.parse::<usize>().ok().and_then(|i| chunks.get(i)) else {
            break;
        };
        let counts = run(chunk);
        println!("done {} {}", counts.accepted, counts.rejected);
    }
    std::process::exit(1);
}

fn run(bytes: &[u8]) -> Counts {
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
            blanks: contacts::domain::options::Blanks::Keep,
        };
        match validate_row(&row.cells, &rules) {
            Verdict::Accepted { .. } => accepted += 1,
            Verdict::Rejected { .. } => rejected += 1,
        }
        ControlFlow::Continue(())
    })
    .expect("readable");
    Counts { accepted, rejected }
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
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, rows] = args.as_slice() {
        if flag == "--child" {
            child(rows.parse().expect("rows"));
            return;
        }
    }
    let rows: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(500_000);
    let chunks: &'static [&'static [u8]] = make_chunks(rows)
        .into_iter()
        .map(|chunk| &*chunk.leak())
        .collect::<Vec<_>>()
        .leak();
    let (first_half, second_half) = chunks.split_at(chunks.len() / 2);
    let workers = [Worker::start(), Worker::start()];
    let warm_up: &'static [&'static [u8]] = vec![&*make_csv(1000, 0).leak()].leak();
    for worker in &workers {
        // the phone metadata and each thread's patterns
        run_on(&[worker], &[Job::new(warm_up)], 1000);
    }

    // This machine's speed drifts by tens of percent between seconds (a shared VM):
    // alternate the modes and report each one's median.
    let (mut ones, mut twos, mut halves, mut processes) = (vec![], vec![], vec![], vec![]);
    let (mut cpu_ones, mut cpu_twos) = (vec![], vec![]);
    let mut counts = Counts::default();
    let per_row_us = |ns: u64| ns as f64 / rows as f64 / 1000.0;
    for _ in 0..ROUNDS {
        let (rate, one_counts, cpu_ns) = run_on(&[&workers[0]], &[Job::new(chunks)], rows);
        counts = one_counts;
        ones.push(rate);
        cpu_ones.push(per_row_us(cpu_ns));

        let shared = Job::new(chunks);
        let (rate, two_counts, cpu_ns) =
            run_on(&[&workers[0], &workers[1]], &[shared.clone(), shared], rows);
        assert_eq!(two_counts, counts, "two threads, same rows");
        twos.push(rate);
        cpu_twos.push(per_row_us(cpu_ns));

        let split = [Job::new(first_half), Job::new(second_half)];
        let (rate, halves_counts, _) = run_on(&[&workers[0], &workers[1]], &split, rows);
        assert_eq!(halves_counts, counts, "two halves, same rows");
        halves.push(rate);

        let (rate, process_counts) = two_processes(rows);
        assert_eq!(process_counts, counts, "two processes, same rows");
        processes.push(rate);
    }
    // Each round's own ratio: the machine's drift over seconds moves a round's modes
    // together, and a ratio of two medians from different rounds would keep it.
    let scaling = median_ratio(&twos, &ones);
    let halves_scaling = median_ratio(&halves, &ones);
    let process_scaling = median_ratio(&processes, &ones);
    let (one, two) = (median(&mut ones), median(&mut twos));
    let (cpu_one, cpu_two) = (median(&mut cpu_ones), median(&mut cpu_twos));
    println!("parse_map_validate rows={rows} rounds={ROUNDS} chunk_rows={CHUNK_ROWS} accepted={} rejected={} one_thread_rows_per_s={one:.0} two_threads_rows_per_s={two:.0} scaling={scaling:.2} cpu_us_per_row_one_thread={cpu_one:.2} cpu_us_per_row_two_threads={cpu_two:.2} halves_scaling={halves_scaling:.2} two_processes_scaling={process_scaling:.2} peak_rss_mb={:.1}", counts.accepted, counts.rejected, peak_rss_mb());
}

/// The median over rounds of `these[round] / those[round]`.
fn median_ratio(these: &[f64], those: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = these.iter().zip(those).map(|(a, b)| a / b).collect();
    median(&mut ratios)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
