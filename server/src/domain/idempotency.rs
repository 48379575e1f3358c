//! Idempotency keys (`Idempotency-Key` on a POST to `/api/v1`): a client that retries a request
//! after a lost answer (a deploy started, the connection dropped) gets the first answer again
//! instead of a second job. Keys are the caller's own (per person and token), kept a day, and
//! bound to the request they first came with: the same key with another request is refused.
//! The record is made before the operation runs, so two retries racing each other run it once
//! (the second hears that the first is still under way).

use crate::adapters::db::{is_unique_violation, now_ms};
use crate::error::Result;
use crate::state::AppState;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// How long a key is remembered (milliseconds).
const KEPT_MS: i64 = 24 * 3600 * 1000;
/// A first request that never finished (its replica stopped) frees its key after this long.
const ABANDONED_MS: i64 = 10 * 60 * 1000;
/// The largest answer kept for replays; a larger one is answered 409 on a replay.
const MAX_BODY: usize = 256 << 10;
/// The longest key taken.
pub const MAX_KEY: usize = 255;

/// What to do with a request that carries a key.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// The first time: run it, then [`finish`].
    First,
    /// Answered before: the same answer (status, JSON body; empty for 204).
    Answered(u16, String),
    /// Answered before, with an answer that is not kept: it held secrets (shown once) or was
    /// too large.
    Withheld,
    /// The first request with this key is still running.
    Running,
    /// The key came first with another request.
    Mismatch,
}

/// Checks a key (printable ASCII, at most [`MAX_KEY`]).
pub fn valid(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The request a key is bound to: the operation and what the request said (path parameters,
/// query, body), hashed.
pub fn fingerprint(operation: &str, parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(operation.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Records the key for `caller` (`user:<id>` or `token:<id>`), or says how it was seen.
pub async fn begin(st: &AppState, caller: &str, key: &str, request: &str) -> Result<Seen> {
    let now = now_ms();
    let pool = st.db.pool();
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(now - KEPT_MS).execute(pool).await?;
    let inserted =
        sqlx::query("INSERT INTO idempotency_keys (caller, idem_key, request, created_at) VALUES ($1, $2, $3, $4)")
            .bind(caller)
            .bind(key)
            .bind(request)
            .bind(now)
            .execute(pool)
            .await;
    match inserted {
        Ok(_) => Ok(Seen::First),
        Err(e) if is_unique_violation(&e) => {
            let row =
                sqlx::query("SELECT request, status, body, withheld, created_at FROM idempotency_keys WHERE caller = $1 AND idem_key = $2")
                    .bind(caller)
                    .bind(key)
                    .fetch_optional(pool)
                    .await?;
            let Some(row) = row else { return Ok(Seen::Running) };
            if row.try_get::<String, _>("request")? != request {
                return Ok(Seen::Mismatch);
            }
            Ok(match row.try_get::<Option<i64>, _>("status")? {
                None if row.try_get::<i64, _>("created_at")? < now - ABANDONED_MS => {
                    // Its replica stopped before it answered: this retry takes the key over.
                    let taken = sqlx::query(
                        "UPDATE idempotency_keys SET created_at = $1 WHERE caller = $2 AND idem_key = $3 \
                         AND status IS NULL AND created_at < $4",
                    )
                    .bind(now)
                    .bind(caller)
                    .bind(key)
                    .bind(now - ABANDONED_MS)
                    .execute(pool)
                    .await?
                    .rows_affected();
                    if taken == 1 {
                        Seen::First
                    } else {
                        Seen::Running
                    }
                }
                None => Seen::Running,
                Some(_) if row.try_get::<i64, _>("withheld")? != 0 => Seen::Withheld,
                Some(status) => {
                    Seen::Answered(status as u16, row.try_get::<Option<String>, _>("body")?.unwrap_or_default())
                }
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps the answer for the retries; a server error is forgotten instead, so a retry runs again.
/// An answer that holds secrets (`secret`: shown once, never stored) or is larger than
/// [`MAX_BODY`] is not kept: a retry hears it was answered.
pub async fn finish(st: &AppState, caller: &str, key: &str, status: u16, body: &str, secret: bool) -> Result<()> {
    if status >= 500 {
        sqlx::query("DELETE FROM idempotency_keys WHERE caller = $1 AND idem_key = $2")
            .bind(caller)
            .bind(key)
            .execute(st.db.pool())
            .await?;
        return Ok(());
    }
    let withheld = secret || body.len() > MAX_BODY;
    sqlx::query(
        "UPDATE idempotency_keys SET status = $1, body = $2, withheld = $3 WHERE caller = $4 AND idem_key = $5",
    )
    .bind(status as i64)
    .bind((!withheld).then_some(body))
    .bind(withheld as i64)
    .bind(caller)
    .bind(key)
    .execute(st.db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(valid("3f1c-retry_1"));
        assert!(!valid(""));
        assert!(!valid("with space"));
        assert!(!valid("ünïcode"));
        assert!(!valid(&"k".repeat(MAX_KEY + 1)));
    }

    #[test]
    fn a_request_is_bound_to_its_operation_and_input() {
        let a = fingerprint("start_job", &[b"app.example.org", b"kind=deploy"]);
        assert_eq!(a, fingerprint("start_job", &[b"app.example.org", b"kind=deploy"]));
        assert_ne!(a, fingerprint("start_job", &[b"app.example.org", b"kind=undeploy"]));
        assert_ne!(a, fingerprint("delete_app", &[b"app.example.org", b"kind=deploy"]));
        assert_ne!(a, fingerprint("start_job", &[b"app.example.orgkind=deploy", b""]), "parts stay apart");
    }
}
