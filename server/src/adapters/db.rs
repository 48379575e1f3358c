//! The database: one `sqlx::Any` pool over SQLite (default, embedded) or PostgreSQL, chosen by
//! the URL. Queries are written once in SQL both understand (`$1` parameters, `RETURNING`,
//! `ON CONFLICT`); the schema differs only in its migrations (migrations/sqlite, migrations/postgres).

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    audit_head: Arc<Mutex<Option<(i64, String)>>>,
    sqlite_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use sqlite://path or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    /// Connects (creating a SQLite file and its directory when missing).
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let mut sqlite_path = None;
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or(rest);
            if path != ":memory:" {
                if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| DbError::Directory { path: dir.display().to_string(), source })?;
                }
            }
            let url = if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
            // The file as sqlx reads the URL (percent-decoded), unless the database lives in memory.
            let in_memory = path == ":memory:" || url.contains("mode=memory");
            if !in_memory {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url).map_err(DbError::Connect)?;
                sqlite_path = Some(options.get_filename().to_path_buf());
            }
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(DbError::UnsupportedUrl(url.to_string()));
        };
        let options = AnyConnectOptions::from_str(&url).map_err(DbError::Connect)?;
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time; a few connections serve concurrent readers.
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(DbError::Connect)?;
        // Absolute, once the file exists: readers that open it apart find the same file.
        let sqlite_path = sqlite_path.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
        Ok(Db { pool, backend, audit_head: Arc::default(), sqlite_path })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite database's file (for readers that go around the pool, such as the audit
    /// chain's walk); `None` on PostgreSQL and for an in-memory database.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.sqlite_path.clone()
    }

    /// The audit chain's newest (seq, hash) as this process last appended it: a hint that saves
    /// each append a read, which the append's own statement checks against the database.
    pub fn audit_head(&self) -> Arc<Mutex<Option<(i64, String)>>> {
        self.audit_head.clone()
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a transaction that reads before it writes cannot fail half-way with
    /// "database is locked"; PostgreSQL serializes on the rows it touches.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The version of what the pages show: moved by every write to a table a page reads (the
    /// `page_version` triggers) and by every audit event. Read before a page renders, it is a
    /// version the page shows at least.
    pub async fn page_version(&self) -> Result<(i64, i64), sqlx::Error> {
        let row =
            sqlx::query("SELECT p.v, h.seq FROM page_version p CROSS JOIN audit_head h WHERE p.id = 1 AND h.id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A stored enum column read back; a value this Potluck does not know is an internal error.
pub fn stored<T: std::str::FromStr>(r: &sqlx::any::AnyRow, column: &str) -> crate::error::Result<T> {
    let text: String = r.try_get(column)?;
    text.parse().map_err(|_| crate::error::Error::internal(format!("unknown {column} {text:?} in the database")))
}

/// Milliseconds since the Unix epoch: how Potluck stores every time.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Whether a database error is a unique-constraint violation (same on both backends).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
