//! Audit-log benchmark (a bench binary, not a test), on SQLite, ratios against baselines run in
//! this same process:
//!
//! 1. Appends per second with the hash chain, one transaction each as requests append, against
//!    plain inserts of the same rows into a table of the same shape and indexes. Target ≥ 0.9×.
//! 2. `potluck audit verify` of a chain of 1,000,000 events, against reading the same rows with
//!    Debian's `sqlite3` tool. Targets: within 2× of it, and under 2 s.
//!
//!   make bench            (or: cargo bench -p potluck-tests --bench audit -- [events])

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark: a failed step ends the run")]

use potluck_server::adapters::db::Db;
use potluck_server::domain::audit::{self, AuditAction, Event, Origin};
use serde_json::json;
use std::time::Instant;

const APPENDS: usize = 3_000;

#[tokio::main]
async fn main() {
    let verify_events: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await.unwrap();
    db.migrate().await.unwrap();
    // The audit table's shape and indexes, without the chain.
    for sql in [
        "CREATE TABLE plain_events (seq BIGINT PRIMARY KEY, at BIGINT NOT NULL, actor_kind TEXT NOT NULL, actor_id BIGINT, \
         actor_name TEXT NOT NULL, collective_id BIGINT, collective TEXT, action TEXT NOT NULL, target TEXT NOT NULL, \
         outcome TEXT NOT NULL, request_id TEXT NOT NULL, client_addr TEXT NOT NULL, details TEXT NOT NULL)",
        "CREATE INDEX plain_events_collective ON plain_events (collective_id, seq)",
        "CREATE INDEX plain_events_action ON plain_events (action, seq)",
        "CREATE INDEX plain_events_at ON plain_events (at)",
    ] {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }
    let origin = Origin::system("bench");

    // 1. One event per transaction, as every request appends it.
    let t = Instant::now();
    for i in 0..APPENDS {
        let event = Event::new(AuditAction::RecipeFetch, format!("thing {i}")).details(json!({ "i": i }));
        audit::record_alone(&db, &origin, event).await.unwrap();
    }
    let chained = APPENDS as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..APPENDS {
        let mut tx = db.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO plain_events (seq, at, actor_kind, actor_id, actor_name, collective_id, collective, action, \
             target, outcome, request_id, client_addr, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(i as i64)
        .bind(potluck_server::adapters::db::now_ms())
        .bind("system")
        .bind(None::<i64>)
        .bind("bench")
        .bind(None::<i64>)
        .bind(None::<String>)
        .bind("recipe.fetch")
        .bind(format!("thing {i}"))
        .bind("success")
        .bind("")
        .bind("")
        .bind(json!({ "i": i }).to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let plain = APPENDS as f64 / t.elapsed().as_secs_f64();
    println!("audit appends (SQLite, one transaction each, {APPENDS} events)");
    println!("  hash-chained append : {chained:>10.0} events/s");
    println!("  plain insert (base) : {plain:>10.0} events/s");
    println!("  ratio chained/plain : {:>10.2}   target ≥ 0.9", chained / plain);

    // 2. Verify a long chain.
    let t = Instant::now();
    let mut remaining = verify_events - APPENDS;
    while remaining > 0 {
        let n = remaining.min(20_000);
        let events = (0..n)
            .map(|i| Event::new(AuditAction::RecipeFetch, format!("bulk {i}")).details(json!({ "i": i })))
            .collect();
        let mut tx = audit::begin(&db).await.unwrap();
        tx.record_all(&origin, events).await.unwrap();
        tx.commit().await.unwrap();
        remaining -= n;
    }
    println!("\nbuilt a chain of {verify_events} events in {:.1} s (batched appends)", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let report = audit::verify(&db, None, None).await.unwrap();
    let verify_time = t.elapsed().as_secs_f64();
    assert!(report.broken.is_none(), "the chain verifies");
    assert_eq!(report.events as usize, verify_events);
    // The same rows read by SQLite's own command-line tool, written to /dev/null.
    let columns = "seq, at, actor_kind, actor_id, actor_name, collective_id, collective, action, target, outcome, \
                   request_id, client_addr, details, prev_hash, hash";
    let t = Instant::now();
    let out = std::process::Command::new("sqlite3")
        .arg(dir.path().join("bench.db"))
        .arg(format!("SELECT {columns} FROM audit_events ORDER BY seq"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("Debian's sqlite3 (scripts/setup.sh installs it)");
    let scan_time = t.elapsed().as_secs_f64();
    assert!(out.success(), "sqlite3 read the rows");
    println!("verify {verify_events} events");
    println!(
        "  potluck audit verify  : {verify_time:>8.2} s ({:.0} events/s)   target < 2 s",
        verify_events as f64 / verify_time
    );
    println!("  sqlite3 reads the rows: {scan_time:>8.2} s (base)");
    println!("  ratio verify/sqlite3  : {:>8.2}   target ≤ 2", verify_time / scan_time);
    db.close().await;
}
