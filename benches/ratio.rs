//! The whole path's time over gunzip's on the same bytes, measured in
//! alternation: each run of the path (base64, gunzip, prefilter, parse,
//! rules, in-memory state) comes right after a run of gunzip alone, many
//! times. On a shared machine the load changes from one second to the
//! next, and a ratio of two benchmarks measured one after the other moves
//! with it; here both sides see the same moments. Prints, for each corpus
//! and set-up, the ratio of the fastest runs and of the medians.
//!
//! A third side, timed in the same alternation, stops before state: gunzip,
//! the envelope, the prefilter and the rules, with no key read, alert
//! rendered, written or published. What the whole path takes beyond it is
//! the work per key and per alert.
//!
//! `cargo bench --bench ratio` (`make bench` runs it after the criterion
//! benchmarks); under `cargo test` each set-up runs once.

mod corpus;
mod setups;

use std::hint::black_box;
use std::time::{Duration, Instant};

use eks_audit_detector::config::DetectorConfig;
use eks_audit_detector::decode::{extract_data, inflate, Batch};
use eks_audit_detector::handler::Processor;
use eks_audit_detector::rules::Detector;
use eks_audit_detector::scan::{ScanStats, Scanner};
use eks_audit_detector::store::memory::MemoryStore;

use corpus::{payload, Profile, Rng};
use setups::{every_rule, two_original, with_sigma, Discard};

/// Batches of the reference traffic generator (`benches/data/README.md`).
const REFERENCE_METADATA: &[u8] = include_bytes!("data/reference-metadata.json");
const REFERENCE_MIXED: &[u8] = include_bytes!("data/reference-mixed.json");

/// Runs of each side per set-up.
const RUNS: usize = 200;

fn main() {
    let runs = if std::env::args().any(|a| a == "--bench") {
        RUNS
    } else {
        1
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let setups: [(&str, DetectorConfig); 3] = [
        ("every built-in rule", every_rule()),
        ("the two original rules", two_original()),
        ("with Sigma", with_sigma()),
    ];
    // The batches of `benches/pipeline.rs`, then the reference generator's
    // (see `benches/data/README.md`).
    let mut corpora: Vec<(&str, Vec<u8>)> =
        [("metadata", Profile::Metadata), ("mixed", Profile::Mixed)]
            .into_iter()
            .map(|(name, profile)| {
                let mut rng = Rng::new(7);
                (
                    name,
                    payload(&mut rng, 1_715_644_800_000, 1_000_000, profile).0,
                )
            })
            .collect();
    corpora.push(("ref-metadata", REFERENCE_METADATA.to_vec()));
    corpora.push(("ref-mixed", REFERENCE_MIXED.to_vec()));
    for (corpus, body) in &corpora {
        let data = extract_data(body).expect("envelope").into_owned();
        for (label, config) in &setups {
            let mut gunzip = Vec::with_capacity(runs);
            let mut path = Vec::with_capacity(runs);
            let mut scan = Vec::with_capacity(runs);
            let detector = Detector::new(config.clone());
            detector.prefilter();
            for run in 0..runs {
                // A fresh store each time (every key new, the costliest
                // case), built outside the timing, as in the criterion
                // benchmark.
                let p = Processor::new(Detector::new(config.clone()), MemoryStore::new(), Discard);
                p.detector().prefilter();
                let time_gunzip = || {
                    let t = Instant::now();
                    black_box(inflate(&data, 64 << 20).expect("inflates").len());
                    t.elapsed()
                };
                let time_path = || {
                    let t = Instant::now();
                    let report = runtime
                        .block_on(p.handle_invoke_body(body))
                        .expect("handled");
                    let spent = t.elapsed();
                    black_box(report.scan.events);
                    spent
                };
                let time_scan = || {
                    let t = Instant::now();
                    let json = inflate(&data, 64 << 20).expect("inflates");
                    let batch = Batch::parse(&json).expect("a batch");
                    let mut matches = Vec::new();
                    let mut stats = ScanStats::default();
                    Scanner::new(&detector).scan_batch(&batch, &mut matches, &mut stats);
                    let spent = t.elapsed();
                    black_box(matches.len());
                    spent
                };
                // Each side goes first in turn: none always follows another's
                // leftovers in the caches.
                match run % 3 {
                    0 => {
                        gunzip.push(time_gunzip());
                        path.push(time_path());
                        scan.push(time_scan());
                    }
                    1 => {
                        path.push(time_path());
                        scan.push(time_scan());
                        gunzip.push(time_gunzip());
                    }
                    _ => {
                        scan.push(time_scan());
                        gunzip.push(time_gunzip());
                        path.push(time_path());
                    }
                }
            }
            let (g_min, g_median) = min_median(&mut gunzip);
            let (p_min, p_median) = min_median(&mut path);
            let (s_min, s_median) = min_median(&mut scan);
            println!(
                "{corpus:<12} {label:<22}  gunzip {:>6.3} ms  path {:>6.3} ms  {:.2}x (medians {:.2}x)  no state {:.2}x (medians {:.2}x)",
                ms(g_min),
                ms(p_min),
                ms(p_min) / ms(g_min),
                ms(p_median) / ms(g_median),
                ms(s_min) / ms(g_min),
                ms(s_median) / ms(g_median),
            );
        }
    }
}

fn min_median(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort_unstable();
    (times[0], times[times.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
