//! The tamper-evident audit log.
//!
//! Every change is made in an [`Audited`] transaction, which records its typed events
//! ([`AuditAction`]) and will not commit without one. Events form a hash
//! chain: each stores the SHA-256 of the one before, and `audit_head` holds the newest
//! `(seq, hash)`, so editing, removing or re-ordering any row — including the last — is found by
//! [`verify`]. Events never carry secret values: constructors take only names and ids.

use crate::adapters::crypto::SecretBox;
use crate::adapters::db::{now_ms, Db, Tx};
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

impl Sealed<'_> {
    fn hash(&self) -> String {
        let canonical = json!([
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
            self.prev_hash
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
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
}

/// Begins a change.
pub async fn begin(db: &Db) -> Result<Audited> {
    Ok(Audited { tx: db.begin().await?, recorded: 0 })
}

impl Audited {
    /// Records `event`, done by `origin`; returns its sequence number.
    pub async fn record(&mut self, origin: &Origin, event: Event) -> Result<i64> {
        let seq = append(&mut self.tx, origin, event).await?;
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

/// Appends `event` in `tx`. Returns the event's sequence number.
async fn append(tx: &mut Tx, origin: &Origin, event: Event) -> Result<i64> {
    check_declared(event.action)?;
    // Taking the head row serializes appenders (a row lock on PostgreSQL; SQLite transactions
    // already hold the write lock), so the chain never forks.
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let mut details = event.details;
    if let (Some(token_id), Some(obj)) = (origin.actor.token_id, details.as_object_mut()) {
        obj.insert("api_token_id".into(), json!(token_id));
    }
    let details = details.to_string();
    let (collective_id, collective) = match &event.collective {
        Some((id, slug)) => (Some(*id), Some(slug.as_str())),
        None => (None, None),
    };
    let sealed = Sealed {
        seq,
        at: now_ms(),
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
        details: &details,
        prev_hash: &prev_hash,
    };
    let hash = sealed.hash();
    sqlx::query(
        "INSERT INTO audit_events (seq, at, actor_kind, actor_id, actor_name, collective_id, collective, action, \
         target, outcome, request_id, client_addr, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
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
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&hash).execute(&mut **tx).await?;
    tracing::info!(audit.seq = seq, audit.action = event.action.as_str(), audit.target = %event.target, "audit event recorded");
    Ok(seq)
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

/// Walks the chain alone.
async fn verify_chain(db: &Db) -> Result<VerifyReport> {
    let mut rows = sqlx::query(
        "SELECT seq, at, actor_kind, actor_id, actor_name, collective_id, collective, action, target, outcome, \
         request_id, client_addr, details, prev_hash, hash FROM audit_events ORDER BY seq",
    )
    .fetch(db.pool());
    let mut expected_seq = 1i64;
    let mut last_hash = GENESIS_HASH.to_string();
    let mut count = 0i64;
    let broken = |seq: i64, reason: String| Ok(VerifyReport { events: seq - 1, broken: Some(Broken { seq, reason }) });
    while let Some(row) = rows.try_next().await? {
        let seq: i64 = row.try_get("seq")?;
        let prev_hash: String = row.try_get("prev_hash")?;
        let stored: String = row.try_get("hash")?;
        if seq != expected_seq {
            return broken(expected_seq, format!("event {expected_seq} is missing (the next event is {seq})"));
        }
        if prev_hash != last_hash {
            return broken(seq, format!("event {seq} does not follow event {}: its previous-hash differs", seq - 1));
        }
        let actor_kind: String = row.try_get("actor_kind")?;
        let actor_name: String = row.try_get("actor_name")?;
        let collective: Option<String> = row.try_get("collective")?;
        let action: String = row.try_get("action")?;
        let target: String = row.try_get("target")?;
        let outcome: String = row.try_get("outcome")?;
        let request_id: String = row.try_get("request_id")?;
        let client_addr: String = row.try_get("client_addr")?;
        let details: String = row.try_get("details")?;
        let sealed = Sealed {
            seq,
            at: row.try_get("at")?,
            actor_kind: &actor_kind,
            actor_id: row.try_get("actor_id")?,
            actor_name: &actor_name,
            collective_id: row.try_get("collective_id")?,
            collective: collective.as_deref(),
            action: &action,
            target: &target,
            outcome: &outcome,
            request_id: &request_id,
            client_addr: &client_addr,
            details: &details,
            prev_hash: &prev_hash,
        };
        if sealed.hash() != stored {
            return broken(seq, format!("event {seq} was modified: its content does not match its hash"));
        }
        last_hash = stored;
        expected_seq += 1;
        count += 1;
    }
    drop(rows);
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(db.pool()).await?;
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: String = head.try_get("hash")?;
    if head_seq != count || head_hash != last_hash {
        let seq = count + 1;
        return Ok(VerifyReport {
            events: count,
            broken: Some(Broken {
                seq,
                reason: format!("the log ends at event {count} but {head_seq} events were recorded: event {seq} and later were removed"),
            }),
        });
    }
    Ok(VerifyReport { events: count, broken: None })
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
            let details = event.details.to_string();
            let (collective_id, collective) = match &event.collective {
                Some((id, slug)) => (Some(*id), Some(slug.clone())),
                None => (None, None),
            };
            let hash = Sealed {
                seq,
                at,
                actor_kind: origin.actor.kind,
                actor_id: origin.actor.id,
                actor_name: &origin.actor.name,
                collective_id,
                collective: collective.as_deref(),
                action: event.action.as_str(),
                target: &event.target,
                outcome: event.outcome,
                request_id: &origin.request_id,
                client_addr: &origin.client_addr,
                details: &details,
                prev_hash: &prev_hash,
            }
            .hash();
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
