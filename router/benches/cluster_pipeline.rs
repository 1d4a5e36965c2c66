//! What one pipeline costs on a cluster: a single task sends pipelines of 10 commands of one
//! slot back to back through `Router::query_pipeline` on a 3 × 1 cluster (the testkit's
//! `Cluster`), so each figure is a pipeline's latency, not the machine's throughput. Three
//! pipelines: 10 `SET`s (the slot's master), 10 `GET`s of a hot key read from its replica (the
//! router without its cache), and 5 `SET`s then 5 `GET`s of cold keys.
//!
//! ```text
//! cargo build -p hotkey --release   # the module the servers load
//! cargo bench -p hotkey-router --bench cluster_pipeline
//! ```
//!
//! The pipelines alternate over `ROUNDS` rounds of `ROUND` each, and each figure is the median
//! of its rounds, so a burst of other load on the machine touches all three. Run without
//! `--bench` (`cargo test --bench cluster_pipeline`) it makes one short round, as a smoke test.

use std::time::{Duration, Instant};

use hotkey_router::redis::{self, Pipeline, Value};
use hotkey_router::{Options, Router, Target};
use hotkey_testkit::Cluster;

/// Commands per pipeline.
const LENGTH: usize = 10;
const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_secs(2);
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The hot key, read from its replica.
const HOT: &str = "{bench}:hot";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, round) = if full {
        (ROUNDS, ROUND)
    } else {
        (1, Duration::from_millis(100))
    };
    let cluster = Cluster::start(3, 1);
    let mut conn = cluster.node_for_key(HOT.as_bytes()).conn();
    let () = redis::cmd("SET")
        .arg(HOT)
        .arg("v")
        .query(&mut conn)
        .expect("SET the hot key");
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut conn)
        .expect("WAIT");
    assert_eq!(acked, 1, "the replica has the hot key");
    let () = redis::cmd("HOTKEY.PIN")
        .arg(HOT)
        .query(&mut conn)
        .expect("HOTKEY.PIN");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let router = runtime
        .block_on(Router::connect_cluster(
            cluster.urls(),
            Options::default().cache(false),
        ))
        .expect("connect the router");
    let mut get = redis::cmd("GET");
    get.arg(HOT);
    let deadline = Instant::now() + READY_TIMEOUT;
    while router.route(&get) != Target::Replica {
        assert!(
            Instant::now() < deadline,
            "the router does not read {HOT} from its replica after {READY_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut writes = redis::pipe();
    for i in 0..LENGTH {
        writes.cmd("SET").arg(format!("{{bench}}:w{i}")).arg(i);
    }
    let mut hot_reads = redis::pipe();
    for _ in 0..LENGTH {
        hot_reads.cmd("GET").arg(HOT);
    }
    let mut mixed = redis::pipe();
    for i in 0..LENGTH / 2 {
        mixed.cmd("SET").arg(format!("{{bench}}:m{i}")).arg(i);
    }
    for i in 0..LENGTH / 2 {
        mixed.cmd("GET").arg(format!("{{bench}}:m{i}"));
    }
    let pipelines: [(&str, &Pipeline); 3] = [
        ("10 SETs (master)", &writes),
        ("10 GETs of a hot key (replica)", &hot_reads),
        ("5 SETs, 5 GETs (master)", &mixed),
    ];
    let mut per_pipeline: Vec<Vec<f64>> = vec![Vec::new(); pipelines.len()];
    for _ in 0..rounds {
        for (i, (_, pipeline)) in pipelines.iter().enumerate() {
            let (sent, took) = runtime.block_on(async {
                let start = Instant::now();
                let mut sent = 0u64;
                while start.elapsed() < round {
                    let _: Value = router
                        .query_pipeline(pipeline)
                        .await
                        .unwrap_or_else(|e| panic!("pipeline: {e}"));
                    sent += 1;
                }
                (sent, start.elapsed())
            });
            per_pipeline[i].push(took.as_secs_f64() * 1e6 / sent as f64);
        }
    }
    println!(
        "{:<32} {:>14} {:>14}",
        "pipeline of one slot", "µs/pipeline", "pipelines/s"
    );
    for ((name, _), mut micros) in pipelines.iter().zip(per_pipeline) {
        micros.sort_by(f64::total_cmp);
        let median = micros[micros.len() / 2];
        println!("{name:<32} {median:>14.1} {:>14.0}", 1e6 / median);
    }
    println!("{}", router.metrics());
}
