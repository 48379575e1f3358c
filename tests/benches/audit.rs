//! Audit-log benchmark (a bench binary, not a test): appends per second with the hash chain on
//! SQLite, against plain inserts of the same rows; and the time to verify a chain of 1,000,000
//! events, against merely reading those rows. Ratios compare runs made in this same process.
//!
//!   make bench            (or: cargo bench -p potluck-tests --bench audit -- [events])

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark: a failed step ends the run")]

use futures_util::TryStreamExt;
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
    sqlx::query(
        "CREATE TABLE plain_events (seq BIGINT PRIMARY KEY, at BIGINT, actor_name TEXT, action TEXT, target TEXT, details TEXT)",
    )
    .execute(db.pool())
    .await
    .unwrap();
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
            "INSERT INTO plain_events (seq, at, actor_name, action, target, details) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(i as i64)
        .bind(potluck_server::adapters::db::now_ms())
        .bind("bench")
        .bind("recipe.fetch")
        .bind(format!("thing {i}"))
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
    println!("  ratio chained/plain : {:>10.2}", chained / plain);

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
    let t = Instant::now();
    let mut rows = sqlx::query("SELECT seq, at, actor_kind, actor_id, actor_name, collective_id, collective, action, target, outcome, request_id, client_addr, details, prev_hash, hash FROM audit_events ORDER BY seq").fetch(db.pool());
    let mut read = 0usize;
    while rows.try_next().await.unwrap().is_some() {
        read += 1;
    }
    drop(rows);
    let scan_time = t.elapsed().as_secs_f64();
    assert_eq!(read, verify_events);
    println!("verify {verify_events} events");
    println!("  potluck audit verify : {verify_time:>8.2} s ({:.0} events/s)", verify_events as f64 / verify_time);
    println!("  read rows only (base): {scan_time:>8.2} s");
    println!("  ratio verify/read    : {:>8.2}", verify_time / scan_time);
    db.close().await;
}
