//! The tamper-evident audit log.
//!
//! Every change is made in an [`Audited`] transaction, which records its typed events
//! ([`AuditAction`]) and will not commit without one. Events form a hash
//! chain: each stores the SHA-256 of the one before, and `audit_head` holds the newest
//! `(seq, hash)`, so editing, removing or re-ordering any row — including the last — is found by
//! [`verify`]. Events never carry secret values: constructors take only names and ids.

use crate::adapters::crypto::SecretBox;
use crate::adapters::db::{now_ms, Backend, Db, Tx};
use crate::error::{Error, Result};
use futures::TryStreamExt;
pub use potluck_app::actions::AuditAction;
use potluck_app::model::CollectiveId;
use potluck_app::model::{AuditEventView, AuditFilter};
use potluck_app::model::{TokenId, UserId};
use potluck_app::ports::{Caller, Principal};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::BTreeMap;
use std::path::Path;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: &'static str,
    pub id: Option<UserId>,
    pub name: String,
    /// The API token used, if any (its id, never its value).
    pub token_id: Option<TokenId>,
}

impl Actor {
    pub fn of(caller: &Caller) -> Actor {
        match &caller.principal {
            Principal::Anonymous => Actor { kind: "anonymous", id: None, name: "anonymous".into(), token_id: None },
            Principal::User(u) => {
                Actor { kind: "user", id: Some(u.user_id), name: u.display_name.clone(), token_id: None }
            }
            Principal::Token(t) => {
                Actor { kind: "token", id: Some(t.user_id), name: t.display_name.clone(), token_id: Some(t.token_id) }
            }
        }
    }

    pub fn user(id: UserId, name: &str) -> Actor {
        Actor { kind: "user", id: Some(id), name: name.to_string(), token_id: None }
    }

    /// Potluck itself (jobs, the command line).
    pub fn system(what: &str) -> Actor {
        Actor { kind: "system", id: None, name: what.to_string(), token_id: None }
    }
}

/// Where the request came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub actor: Actor,
    pub request_id: String,
    pub client_addr: String,
}

impl Origin {
    pub fn of(caller: &Caller) -> Origin {
        Origin {
            actor: Actor::of(caller),
            request_id: caller.request_id.clone(),
            client_addr: caller.client_addr.clone(),
        }
    }

    pub fn as_actor(caller: &Caller, actor: Actor) -> Origin {
        Origin { actor, request_id: caller.request_id.clone(), client_addr: caller.client_addr.clone() }
    }

    pub fn system(what: &str) -> Origin {
        Origin { actor: Actor::system(what), request_id: uuid::Uuid::now_v7().to_string(), client_addr: "local".into() }
    }
}

/// One audit event: what was done, to what, in which collective, and the names and ids that
/// tell the story (never a secret value).
#[derive(Debug, Clone)]
pub struct Event {
    pub action: AuditAction,
    pub collective: Option<(CollectiveId, String)>,
    pub target: String,
    pub outcome: &'static str,
    pub details: Value,
}

impl Event {
    pub fn new(action: AuditAction, target: impl Into<String>) -> Event {
        Event { action, collective: None, target: target.into(), outcome: "success", details: json!({}) }
    }

    pub fn in_collective(mut self, id: CollectiveId, slug: &str) -> Event {
        self.collective = Some((id, slug.to_string()));
        self
    }

    pub fn details(mut self, details: Value) -> Event {
        self.details = details;
        self
    }

    pub fn outcome(mut self, outcome: &'static str) -> Event {
        self.outcome = outcome;
        self
    }
}

/// The fields that are hashed, in a fixed order.
struct Sealed<'a> {
    seq: i64,
    at: i64,
    actor_kind: &'a str,
    actor_id: Option<UserId>,
    actor_name: &'a str,
    collective_id: Option<CollectiveId>,
    collective: Option<&'a str>,
    action: &'a str,
    target: &'a str,
    outcome: &'a str,
    request_id: &'a str,
    client_addr: &'a str,
    details: &'a str,
    prev_hash: &'a str,
}

impl<'a> Sealed<'a> {
    /// `event`, done by `origin`, as the chain seals it at `seq` after `prev_hash`, with its
    /// details as stored ([`stored_details`]).
    fn of(seq: i64, at: i64, origin: &'a Origin, event: &'a Event, details: &'a str, prev_hash: &'a str) -> Self {
        let (collective_id, collective) = match &event.collective {
            Some((id, slug)) => (Some(*id), Some(slug.as_str())),
            None => (None, None),
        };
        Sealed {
            seq,
            at,
            actor_kind: origin.actor.kind,
            actor_id: origin.actor.id,
            actor_name: &origin.actor.name,
            collective_id,
            collective,
            action: event.action.as_str(),
            target: &event.target,
            outcome: event.outcome,
            request_id: &origin.request_id,
            client_addr: &origin.client_addr,
            details,
            prev_hash,
        }
    }

    /// The SHA-256 of the event's fields as a JSON array (the canonical form every chain is
    /// sealed with), written straight from the fields.
    fn hash(&self) -> String {
        let canonical = (
            self.seq,
            self.at,
            self.actor_kind,
            self.actor_id,
            self.actor_name,
            self.collective_id,
            self.collective,
            self.action,
            self.target,
            self.outcome,
            self.request_id,
            self.client_addr,
            self.details,
            self.prev_hash,
        );
        let mut hasher = Sha256::new();
        // Writing JSON into a hasher cannot fail.
        let _ = serde_json::to_writer(DigestWriter(&mut hasher), &canonical);
        hex::encode(hasher.finalize())
    }
}

/// Feeds what is written to a digest.
struct DigestWriter<'a>(&'a mut Sha256);

impl std::io::Write for DigestWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

tokio::task_local! {
    /// The operation being run and the audit actions its declaration allows.
    static DECLARED: (&'static str, &'static [AuditAction]);
}

/// Runs an operation's handler so that [`append`] refuses actions its declaration does not
/// name (a handler cannot write what the registry and the matrix test do not know of).
pub async fn declared<F: std::future::Future>(
    operation: &'static str,
    actions: &'static [AuditAction],
    f: F,
) -> F::Output {
    DECLARED.scope((operation, actions), f).await
}

/// A write transaction that records what it changes. It commits only once it has recorded at
/// least one event, so a change cannot land without its audit event, and the events land with
/// the change or not at all. It reads and writes like the transaction it wraps (`&mut *tx`).
pub struct Audited {
    tx: Tx,
    recorded: usize,
    head: Head,
}

/// Begins a change.
pub async fn begin(db: &Db) -> Result<Audited> {
    Ok(Audited { tx: db.begin().await?, recorded: 0, head: Head { known: db.audit_head(), backend: db.backend() } })
}

impl Audited {
    /// Records `event`, done by `origin`; returns its sequence number.
    pub async fn record(&mut self, origin: &Origin, event: Event) -> Result<i64> {
        let seq = append(&mut self.tx, &self.head, origin, event).await?;
        self.recorded += 1;
        Ok(seq)
    }

    /// Records many events at once (imports, benchmarks): the chain is exactly what one
    /// [`record`](Self::record) after another would have written.
    pub async fn record_all(&mut self, origin: &Origin, events: Vec<Event>) -> Result<i64> {
        let n = events.len();
        let seq = append_batch(&mut self.tx, origin, events).await?;
        self.recorded += n;
        Ok(seq)
    }

    /// Commits the change and its events; refuses (and rolls back) a change that recorded none.
    pub async fn commit(self) -> Result<()> {
        if self.recorded == 0 {
            let operation = DECLARED.try_with(|(operation, _)| *operation).unwrap_or("a system task");
            return Err(Error::internal(format!("{operation} tried to commit a change without an audit event")));
        }
        self.tx.commit().await.map_err(Error::from)
    }
}

impl std::ops::Deref for Audited {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for Audited {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// Records one event as a change of its own (an intent before a network call, the command line).
pub async fn record_alone(db: &Db, origin: &Origin, event: Event) -> Result<i64> {
    let mut tx = begin(db).await?;
    let seq = tx.record(origin, event).await?;
    tx.commit().await?;
    Ok(seq)
}

/// Refuses an action the running operation's declaration does not name.
fn check_declared(action: AuditAction) -> Result<()> {
    match DECLARED.try_with(|(operation, actions)| {
        (!actions.contains(&action))
            .then(|| format!("operation {operation} wrote the undeclared audit action {}", action.as_str()))
    }) {
        Ok(Some(undeclared)) => Err(Error::internal(undeclared)),
        _ => Ok(()),
    }
}

/// Where the chain ends, as this process last appended to it ([`Db::audit_head`]).
struct Head {
    known: std::sync::Arc<std::sync::Mutex<Option<(i64, String)>>>,
    backend: Backend,
}

impl Head {
    fn known(&self) -> Option<(i64, String)> {
        self.known.lock().ok().and_then(|h| h.clone())
    }

    fn set(&self, seq: i64, hash: &str) {
        if let Ok(mut h) = self.known.lock() {
            *h = Some((seq, hash.to_string()));
        }
    }
}

/// One statement appends an event after the head it names, and moves the head, or does nothing
/// when the head is elsewhere. PostgreSQL: the head's row is updated first (its lock orders
/// concurrent appenders; one that waited finds the head moved and does nothing). SQLite: the
/// transaction already holds the write lock (`BEGIN IMMEDIATE`), and a trigger moves the head.
/// Parameters: the event's 15 columns, then the head's seq.
const APPEND_SQLITE: &str =
    "INSERT INTO audit_events (seq, at, actor_kind, actor_id, actor_name, collective_id, collective, \
     action, target, outcome, request_id, client_addr, details, prev_hash, hash) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
     WHERE EXISTS (SELECT 1 FROM audit_head WHERE id = 1 AND seq = $16 AND hash = $14)";
const APPEND_POSTGRES: &str = "WITH head AS (UPDATE audit_head SET seq = $1, hash = $15 \
     WHERE id = 1 AND seq = $16 AND hash = $14 RETURNING seq) \
     INSERT INTO audit_events (seq, at, actor_kind, actor_id, actor_name, collective_id, collective, \
     action, target, outcome, request_id, client_addr, details, prev_hash, hash) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM head";

/// An event's details as stored: with the API token that acted, when one did.
fn stored_details(origin: &Origin, event: &Event) -> String {
    match (origin.actor.token_id, event.details.as_object()) {
        (Some(token_id), Some(obj)) => {
            let mut obj = obj.clone();
            obj.insert("api_token_id".into(), json!(token_id));
            Value::Object(obj).to_string()
        }
        _ => event.details.to_string(),
    }
}

/// Appends `event` in `tx`. Returns the event's sequence number.
///
/// The chain's head as this process last left it is tried first: one statement in all. When
/// another process (a replica, the command line) or a rolled-back transaction moved it, the
/// head is read under the lock and the event sealed again.
async fn append(tx: &mut Tx, head: &Head, origin: &Origin, event: Event) -> Result<i64> {
    check_declared(event.action)?;
    let details = stored_details(origin, &event);
    let mut after = head.known();
    for attempt in 0..2 {
        let (prev_seq, prev_hash) = match after.take() {
            Some(known) if attempt == 0 => known,
            _ => {
                let lock = match head.backend {
                    Backend::Postgres => " FOR UPDATE",
                    Backend::Sqlite => "",
                };
                let row = sqlx::query(&format!("SELECT seq, hash FROM audit_head WHERE id = 1{lock}"))
                    .fetch_one(&mut **tx)
                    .await?;
                (row.try_get("seq")?, row.try_get("hash")?)
            }
        };
        let sealed = Sealed::of(prev_seq + 1, now_ms(), origin, &event, &details, &prev_hash);
        let hash = sealed.hash();
        let statement = match head.backend {
            Backend::Postgres => APPEND_POSTGRES,
            Backend::Sqlite => APPEND_SQLITE,
        };
        let appended = sqlx::query(statement)
            .bind(sealed.seq)
            .bind(sealed.at)
            .bind(sealed.actor_kind)
            .bind(sealed.actor_id)
            .bind(sealed.actor_name)
            .bind(sealed.collective_id)
            .bind(sealed.collective)
            .bind(sealed.action)
            .bind(sealed.target)
            .bind(sealed.outcome)
            .bind(sealed.request_id)
            .bind(sealed.client_addr)
            .bind(sealed.details)
            .bind(sealed.prev_hash)
            .bind(&hash)
            .bind(prev_seq)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1;
        if appended {
            head.set(sealed.seq, &hash);
            tracing::info!(audit.seq = sealed.seq, audit.action = event.action.as_str(), audit.target = %event.target, "audit event recorded");
            return Ok(sealed.seq);
        }
    }
    Err(Error::internal("the audit chain's head moved while this transaction held it"))
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: i64,
    pub broken: Option<Broken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first event that does not check out.
    pub seq: i64,
    pub reason: String,
}

/// A signed record of the chain's head: someone who can write to the database can rewrite or
/// cut the chain (its hashes are not keyed), but cannot sign a checkpoint without the instance
/// key, so a checkpoint past the end, or one the chain no longer matches, gives them away.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    pub signature: String,
}

fn checkpoint_text(seq: i64, hash: &str, at: i64) -> String {
    format!("potluck audit checkpoint\n{seq}\n{hash}\n{at}")
}

/// Records a signed checkpoint of the chain's head (unless the head already has one), and
/// appends it to `export` (a file outside the database) when given.
pub async fn checkpoint(db: &Db, secrets: &SecretBox, export: Option<&Path>) -> Result<Option<Checkpoint>> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(db.pool()).await?;
    let seq: i64 = head.try_get("seq")?;
    let hash: String = head.try_get("hash")?;
    if seq == 0 {
        return Ok(None);
    }
    let at = now_ms();
    let cp = Checkpoint { seq, signature: secrets.sign(&checkpoint_text(seq, &hash, at)), hash, at };
    let inserted = sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING",
    )
    .bind(cp.seq)
    .bind(&cp.hash)
    .bind(cp.at)
    .bind(&cp.signature)
    .execute(db.pool())
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    if let Some(path) = export {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let line = serde_json::to_string(&cp).map_err(Error::internal)? + "\n";
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::internal(format!("audit checkpoint file {}: {e}", path.display())))?;
        f.write_all(line.as_bytes())
            .map_err(|e| Error::internal(format!("audit checkpoint file {}: {e}", path.display())))?;
    }
    Ok(Some(cp))
}

/// The checkpoints in the database and in `export` (when given), by sequence number.
async fn checkpoints(db: &Db, export: Option<&Path>) -> Result<BTreeMap<i64, Checkpoint>> {
    let mut out = BTreeMap::new();
    if let Some(path) = export {
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                if let Ok(cp) = serde_json::from_str::<Checkpoint>(line) {
                    out.insert(cp.seq, cp);
                }
            }
        }
    }
    let rows =
        sqlx::query("SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY seq").fetch_all(db.pool()).await?;
    for r in &rows {
        let cp = Checkpoint {
            seq: r.try_get("seq")?,
            hash: r.try_get("hash")?,
            at: r.try_get("at")?,
            signature: r.try_get("signature")?,
        };
        out.entry(cp.seq).or_insert(cp);
    }
    Ok(out)
}

/// Walks the chain from the first event and reports the first one that does not check out,
/// against the signed checkpoints too when the instance key is given.
pub async fn verify(db: &Db, secrets: Option<&SecretBox>, export: Option<&Path>) -> Result<VerifyReport> {
    let mut report = verify_chain(db).await?;
    let Some(secrets) = secrets else { return Ok(report) };
    for cp in checkpoints(db, export).await?.into_values() {
        let when = time::OffsetDateTime::from_unix_timestamp(cp.at / 1000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| cp.at.to_string());
        let problem = if !secrets.verify_signature(&checkpoint_text(cp.seq, &cp.hash, cp.at), &cp.signature) {
            Some(format!(
                "the checkpoint of event {} is not signed with this instance's key (forged or altered)",
                cp.seq
            ))
        } else if cp.seq > report.events && report.broken.is_none() {
            Some(format!(
                "the log ends at event {}, but a checkpoint signed at {when} records event {}: events {} to {} (at least) were removed",
                report.events,
                cp.seq,
                report.events + 1,
                cp.seq
            ))
        } else if cp.seq <= report.events {
            let stored = sqlx::query("SELECT hash FROM audit_events WHERE seq = $1")
                .bind(cp.seq)
                .fetch_optional(db.pool())
                .await?
                .map(|r| r.try_get::<String, _>("hash"))
                .transpose()?;
            (stored.as_deref() != Some(cp.hash.as_str())).then(|| {
                format!(
                    "event {} is not the one the checkpoint signed at {when} records: the chain was rewritten",
                    cp.seq
                )
            })
        } else {
            None
        };
        if let Some(reason) = problem {
            let seq = if cp.seq > report.events { report.events + 1 } else { cp.seq };
            if report.broken.as_ref().is_none_or(|b| seq < b.seq) {
                report = VerifyReport { events: seq - 1, broken: Some(Broken { seq, reason }) };
            }
        }
    }
    Ok(report)
}

/// An event as stored, owned (what the chain walk reads).
struct Stored {
    seq: i64,
    at: i64,
    actor_kind: String,
    actor_id: Option<UserId>,
    actor_name: String,
    collective_id: Option<CollectiveId>,
    collective: Option<String>,
    action: String,
    target: String,
    outcome: String,
    request_id: String,
    client_addr: String,
    details: String,
    prev_hash: String,
    hash: String,
}

/// The columns of [`Stored`], in its order.
const STORED_COLUMNS: &str = "seq, at, actor_kind, actor_id, actor_name, collective_id, collective, action, target, \
     outcome, request_id, client_addr, details, prev_hash, hash";

impl Stored {
    fn seal(&self) -> Sealed<'_> {
        Sealed {
            seq: self.seq,
            at: self.at,
            actor_kind: &self.actor_kind,
            actor_id: self.actor_id,
            actor_name: &self.actor_name,
            collective_id: self.collective_id,
            collective: self.collective.as_deref(),
            action: &self.action,
            target: &self.target,
            outcome: &self.outcome,
            request_id: &self.request_id,
            client_addr: &self.client_addr,
            details: &self.details,
            prev_hash: &self.prev_hash,
        }
    }
}

/// The walk along the chain, event by event in sequence order.
struct Walk {
    expected_seq: i64,
    last_hash: String,
    count: i64,
}

impl Walk {
    fn new() -> Walk {
        Walk { expected_seq: 1, last_hash: GENESIS_HASH.to_string(), count: 0 }
    }

    /// Checks the next event's place in the chain; its own hash is checked apart
    /// ([`hashes_match`]), so that many can be hashed at once.
    fn link(&mut self, e: &Stored, hash_ok: bool) -> std::result::Result<(), VerifyReport> {
        let broken = |seq: i64, reason: String| VerifyReport { events: seq - 1, broken: Some(Broken { seq, reason }) };
        let seq = e.seq;
        if seq != self.expected_seq {
            let expected = self.expected_seq;
            return Err(broken(expected, format!("event {expected} is missing (the next event is {seq})")));
        }
        if e.prev_hash != self.last_hash {
            return Err(broken(
                seq,
                format!("event {seq} does not follow event {}: its previous-hash differs", seq - 1),
            ));
        }
        if !hash_ok {
            return Err(broken(seq, format!("event {seq} was modified: its content does not match its hash")));
        }
        self.last_hash.clone_from(&e.hash);
        self.expected_seq += 1;
        self.count += 1;
        Ok(())
    }

    /// The report once every event was walked, against the head the log records.
    fn finish(self, head_seq: i64, head_hash: &str) -> VerifyReport {
        let count = self.count;
        if head_seq != count || head_hash != self.last_hash {
            let seq = count + 1;
            return VerifyReport {
                events: count,
                broken: Some(Broken {
                    seq,
                    reason: format!("the log ends at event {count} but {head_seq} events were recorded: event {seq} and later were removed"),
                }),
            };
        }
        VerifyReport { events: count, broken: None }
    }
}

/// Whether each event's content matches its hash, hashed on every core.
fn hashes_match(events: &[Stored]) -> Vec<bool> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let per = events.len().div_ceil(cores).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = events
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().map(|e| e.seal().hash() == e.hash).collect::<Vec<bool>>()))
            .collect();
        // A part that panicked has no answers: the panic goes on rather than shift the rest.
        parts.into_iter().flat_map(|p| p.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// How many events are read before they are hashed together.
const WALK_BATCH: usize = 8192;

/// Walks the chain alone.
async fn verify_chain(db: &Db) -> Result<VerifyReport> {
    if let Some(path) = db.sqlite_path() {
        return tokio::task::spawn_blocking(move || verify_sqlite(&path)).await.map_err(Error::internal)?;
    }
    // The events and the head as of one moment: an append meanwhile is not a removed tail.
    let mut snapshot = db.pool().begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *snapshot).await?;
    }
    let sql = format!("SELECT {STORED_COLUMNS} FROM audit_events ORDER BY seq");
    let mut rows = sqlx::query(&sql).fetch(&mut *snapshot);
    let mut walk = Walk::new();
    let mut batch = Vec::with_capacity(WALK_BATCH);
    loop {
        let row = rows.try_next().await?;
        if let Some(r) = &row {
            batch.push(Stored {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                actor_kind: r.try_get("actor_kind")?,
                actor_id: r.try_get("actor_id")?,
                actor_name: r.try_get("actor_name")?,
                collective_id: r.try_get("collective_id")?,
                collective: r.try_get("collective")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                outcome: r.try_get("outcome")?,
                request_id: r.try_get("request_id")?,
                client_addr: r.try_get("client_addr")?,
                details: r.try_get("details")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            });
        }
        if batch.len() == WALK_BATCH || (row.is_none() && !batch.is_empty()) {
            let events = std::mem::take(&mut batch);
            let (ok, events) =
                tokio::task::spawn_blocking(move || (hashes_match(&events), events)).await.map_err(Error::internal)?;
            for (e, ok) in events.iter().zip(ok) {
                if let Err(report) = walk.link(e, ok) {
                    return Ok(report);
                }
            }
        }
        if row.is_none() {
            break;
        }
    }
    drop(rows);
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *snapshot).await?;
    snapshot.rollback().await?;
    Ok(walk.finish(head.try_get("seq")?, &head.try_get::<String, _>("hash")?))
}

/// Walks the chain of a SQLite database straight through SQLite's own interface, in one read
/// transaction (the events and the head as of one moment), on its own connection: one thread
/// reads batches while the others hash the previous one (blocking).
fn verify_sqlite(path: &Path) -> Result<VerifyReport> {
    use rusqlite::{Connection, OpenFlags};
    let failed = |e: rusqlite::Error| Error::internal(format!("reading the audit log: {e}"));
    let mut conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(failed)?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(failed)?;
    let tx = conn.transaction().map_err(failed)?;
    let (sender, batches) = std::sync::mpsc::sync_channel::<Vec<Stored>>(2);
    let walked = std::thread::scope(|scope| -> Result<std::result::Result<Walk, VerifyReport>> {
        let checker = scope.spawn(move || {
            let mut walk = Walk::new();
            for events in batches {
                for (e, ok) in events.iter().zip(hashes_match(&events)) {
                    walk.link(e, ok)?;
                }
            }
            Ok(walk)
        });
        let mut statement =
            tx.prepare(&format!("SELECT {STORED_COLUMNS} FROM audit_events ORDER BY seq")).map_err(failed)?;
        let mut rows = statement.query([]).map_err(failed)?;
        let mut batch = Vec::with_capacity(WALK_BATCH);
        while let Some(r) = rows.next().map_err(failed)? {
            batch.push(Stored {
                seq: r.get(0).map_err(failed)?,
                at: r.get(1).map_err(failed)?,
                actor_kind: r.get(2).map_err(failed)?,
                actor_id: r.get::<_, Option<i64>>(3).map_err(failed)?.map(UserId),
                actor_name: r.get(4).map_err(failed)?,
                collective_id: r.get::<_, Option<i64>>(5).map_err(failed)?.map(CollectiveId),
                collective: r.get(6).map_err(failed)?,
                action: r.get(7).map_err(failed)?,
                target: r.get(8).map_err(failed)?,
                outcome: r.get(9).map_err(failed)?,
                request_id: r.get(10).map_err(failed)?,
                client_addr: r.get(11).map_err(failed)?,
                details: r.get(12).map_err(failed)?,
                prev_hash: r.get(13).map_err(failed)?,
                hash: r.get(14).map_err(failed)?,
            });
            if batch.len() == WALK_BATCH
                && sender.send(std::mem::replace(&mut batch, Vec::with_capacity(WALK_BATCH))).is_err()
            {
                // The checker stopped at a broken link: nothing more to read.
                break;
            }
        }
        if !batch.is_empty() {
            let _ = sender.send(batch);
        }
        drop(sender);
        checker.join().map_err(|_| Error::internal("the audit chain check panicked"))
    })?;
    let walk = match walked {
        Ok(walk) => walk,
        Err(report) => return Ok(report),
    };
    let (head_seq, head_hash): (i64, String) = tx
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(failed)?;
    Ok(walk.finish(head_seq, &head_hash))
}

/// Which events a caller may read.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Collectives(Vec<CollectiveId>),
}

/// One bind parameter of a dynamically built query.
#[derive(Debug, Clone)]
enum Param {
    Int(i64),
    Text(String),
}

/// Reads a page of events (newest first) for `scope` and `filter`.
pub async fn query(
    db: &Db,
    scope: &Scope,
    filter: &AuditFilter,
    collective_id: Option<CollectiveId>,
) -> Result<Vec<AuditEventRow>> {
    let limit = filter.limit.unwrap_or(50).clamp(1, 1000);
    let mut sql = String::from(
        "SELECT seq, at, actor_kind, actor_id, actor_name, collective, action, target, outcome, request_id, \
         client_addr, details, prev_hash, hash FROM audit_events WHERE 1 = 1",
    );
    let mut params: Vec<Param> = Vec::new();
    let next = |p: Param, params: &mut Vec<Param>| {
        params.push(p);
        format!("${}", params.len())
    };
    if let Scope::Collectives(ids) = scope {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(|id| next(Param::Int(id.0), &mut params)).collect();
        sql.push_str(&format!(" AND collective_id IN ({})", list.join(", ")));
    }
    if let Some(id) = collective_id {
        sql.push_str(&format!(" AND collective_id = {}", next(Param::Int(id.0), &mut params)));
    }
    if let Some(actor) = filter.actor.as_deref().filter(|a| !a.is_empty()) {
        let p = next(Param::Text(format!("%{}%", actor.to_lowercase())), &mut params);
        sql.push_str(&format!(" AND LOWER(actor_name) LIKE {p}"));
    }
    if let Some(action) = filter.action.as_deref().filter(|a| !a.is_empty()) {
        let exact = next(Param::Text(action.to_string()), &mut params);
        let prefix = next(Param::Text(format!("{action}.%")), &mut params);
        sql.push_str(&format!(" AND (action = {exact} OR action LIKE {prefix})"));
    }
    if let Some(from) = filter.from {
        sql.push_str(&format!(" AND at >= {}", next(Param::Int(from), &mut params)));
    }
    if let Some(to) = filter.to {
        sql.push_str(&format!(" AND at <= {}", next(Param::Int(to), &mut params)));
    }
    if let Some(before) = filter.before {
        sql.push_str(&format!(" AND seq < {}", next(Param::Int(before), &mut params)));
    }
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", next(Param::Int(limit), &mut params)));
    let mut q = sqlx::query(&sql);
    for p in params {
        q = match p {
            Param::Int(i) => q.bind(i),
            Param::Text(t) => q.bind(t),
        };
    }
    let rows = q.fetch_all(db.pool()).await?;
    rows.iter().map(AuditEventRow::from_row).collect()
}

/// An event as stored, including its chain hashes (the export carries them, so that an exported
/// log can be checked on its own).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEventRow {
    #[serde(flatten)]
    pub view: AuditEventView,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEventRow {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<AuditEventRow> {
        Ok(AuditEventRow {
            view: AuditEventView {
                seq: row.try_get("seq")?,
                at: row.try_get("at")?,
                actor_kind: row.try_get("actor_kind")?,
                actor_id: row.try_get("actor_id")?,
                actor_name: row.try_get("actor_name")?,
                collective: row.try_get("collective")?,
                action: row.try_get("action")?,
                target: row.try_get("target")?,
                outcome: row.try_get("outcome")?,
                request_id: row.try_get("request_id")?,
                client_addr: row.try_get("client_addr")?,
                details: row.try_get("details")?,
            },
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }
}

/// Appends many events in `tx` at once: the head is taken once and rows are written in
/// multi-row inserts. The chain is exactly what [`append`] would have written.
async fn append_batch(tx: &mut Tx, origin: &Origin, events: Vec<Event>) -> Result<i64> {
    for event in &events {
        check_declared(event.action)?;
    }
    let n = i64::try_from(events.len()).map_err(Error::internal)?;
    if n == 0 {
        return Ok(0);
    }
    let head = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(n)
        .fetch_one(&mut **tx)
        .await?;
    let last_seq: i64 = head.try_get("seq")?;
    let mut prev_hash: String = head.try_get("hash")?;
    let mut seq = last_seq - n;
    let at = now_ms();
    const COLUMNS: usize = 15;
    const ROWS: usize = 200;
    for chunk in events.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO audit_events (seq, at, actor_kind, actor_id, actor_name, collective_id, collective, action, \
             target, outcome, request_id, client_addr, details, prev_hash, hash) VALUES ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, event) in chunk.iter().enumerate() {
            seq += 1;
            let details = stored_details(origin, event);
            let hash = Sealed::of(seq, at, origin, event, &details, &prev_hash).hash();
            let (collective_id, collective) = match &event.collective {
                Some((id, slug)) => (Some(*id), Some(slug.clone())),
                None => (None, None),
            };
            let placeholders: Vec<String> = (1..=COLUMNS).map(|c| format!("${}", i * COLUMNS + c)).collect();
            sql.push_str(if i == 0 { "(" } else { ", (" });
            sql.push_str(&placeholders.join(", "));
            sql.push(')');
            rows.push((seq, collective_id, collective, event, details, prev_hash.clone(), hash.clone()));
            prev_hash = hash;
        }
        let mut q = sqlx::query(&sql);
        for (seq, collective_id, collective, event, details, prev, hash) in rows {
            q = q
                .bind(seq)
                .bind(at)
                .bind(origin.actor.kind)
                .bind(origin.actor.id)
                .bind(origin.actor.name.clone())
                .bind(collective_id)
                .bind(collective)
                .bind(event.action.as_str())
                .bind(event.target.clone())
                .bind(event.outcome)
                .bind(origin.request_id.clone())
                .bind(origin.client_addr.clone())
                .bind(details)
                .bind(prev)
                .bind(hash);
        }
        q.execute(&mut **tx).await?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&prev_hash).execute(&mut **tx).await?;
    Ok(last_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chains sealed before are checked with the same bytes: the fields as `json!` writes them.
    #[test]
    fn the_canonical_form_is_the_json_array_of_the_fields() {
        for (actor_id, collective_id, collective) in
            [(Some(UserId(7)), Some(CollectiveId(3)), Some("c-1")), (None, None, None)]
        {
            let s = Sealed {
                seq: 42,
                at: 1_765_000_000_000,
                actor_kind: "user",
                actor_id,
                actor_name: "Zoë \"z\" \\ <admin>\n",
                collective_id,
                collective,
                action: "app.deploy",
                target: "app cloud.example.org",
                outcome: "success",
                request_id: "r-1",
                client_addr: "203.0.113.9",
                details: r#"{"version":"1.0.0+2.0","emoji":"🥘"}"#,
                prev_hash: GENESIS_HASH,
            };
            let reference = json!([
                s.seq,
                s.at,
                s.actor_kind,
                s.actor_id,
                s.actor_name,
                s.collective_id,
                s.collective,
                s.action,
                s.target,
                s.outcome,
                s.request_id,
                s.client_addr,
                s.details,
                s.prev_hash
            ]);
            assert_eq!(s.hash(), hex::encode(Sha256::digest(reference.to_string().as_bytes())));
        }
    }
}
