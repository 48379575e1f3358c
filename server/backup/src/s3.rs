//! Restic repositories in an S3-compatible bucket, as restic lays them out under the bucket's
//! prefix (`config`, `keys/`, `snapshots/`, `index/`, `data/<2 hex>/`), through `object_store`
//! (Apache Arrow's client: SigV4, retries, path-style requests to any endpoint).
//!
//! Credentials are given, never looked for: no environment, profile or instance metadata is
//! read, so a repository a collective names is signed in to with that collective's keys only.
//! rustic's backend traits are blocking; each call runs on one small runtime of its own and the
//! caller's thread waits for it, so the backend works from any thread.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig};
use rustic_core::{BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::sftp::{MAX_ENTRIES, MAX_READ};

/// Where an S3 repository is: restic's `s3:https://host[:port]/bucket[/prefix]`, or
/// `s3:host/bucket[/prefix]` (HTTPS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://host[:port]` or `http://host[:port]`.
    pub endpoint: String,
    pub bucket: String,
    /// Without leading or trailing slashes; empty for the bucket's root.
    pub prefix: String,
}

impl Target {
    /// Parses what follows `s3:`.
    pub fn parse(rest: &str) -> Result<Target, String> {
        let bad = |why: &str| {
            format!("s3:{rest}: {why} (restic's forms: s3:https://host[:port]/bucket/path, s3:host/bucket/path)")
        };
        let (scheme, after) = match rest.split_once("://") {
            Some((s @ ("http" | "https"), after)) => (s, after),
            Some((s, _)) => return Err(bad(&format!("{s}: only http and https"))),
            None => ("https", rest),
        };
        let (authority, path) = after.split_once('/').ok_or_else(|| bad("no bucket"))?;
        if authority.is_empty() || authority.contains(['@', ' ', '?', '#', '\\']) {
            return Err(bad("not a host name (credentials go in their own fields, never in the address)"));
        }
        let port = match authority.strip_prefix('[') {
            Some(v6) => {
                v6.split_once(']').ok_or_else(|| bad("an IPv6 address without its closing ]"))?.1.strip_prefix(':')
            }
            None => authority.split_once(':').map(|(_, p)| p),
        };
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(bad("the port is not a number"));
        }
        let path = path.trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(bad("a bucket is 3 to 63 lowercase letters, digits, dots and dashes"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..")
            || prefix.contains("//")
            || prefix.contains(['?', '#', '\\'])
        {
            return Err(bad("the path inside the bucket has an empty, . or .. part"));
        }
        Ok(Target { endpoint: format!("{scheme}://{authority}"), bucket: bucket.into(), prefix: prefix.into() })
    }

    /// The host (without port or brackets), for checks on where a request goes.
    pub fn host(&self) -> &str {
        let authority = self.endpoint.split_once("://").map_or(self.endpoint.as_str(), |(_, a)| a);
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split_once(']').map_or(v6, |(h, _)| h);
        }
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    }

    /// The port requests go to.
    pub fn port(&self) -> u16 {
        let authority = self.endpoint.split_once("://").map_or(self.endpoint.as_str(), |(_, a)| a);
        let after_host = authority.rsplit_once(']').map_or(authority, |(_, p)| p);
        after_host
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(if self.endpoint.starts_with("http://") { 80 } else { 443 })
    }

    /// restic's form, which [`Target::parse`] reads back.
    pub fn display(&self) -> String {
        let mut s = format!("s3:{}/{}", self.endpoint, self.bucket);
        if !self.prefix.is_empty() {
            s.push('/');
            s.push_str(&self.prefix);
        }
        s
    }
}

/// The keys Potluck signs requests with.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The region the signature names (`us-east-1` when none: what most S3-compatible servers take).
    pub region: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"…")
            .field("region", &self.region)
            .finish()
    }
}

impl Auth {
    /// restic's conventions for the command line: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_DEFAULT_REGION`.
    pub fn from_env() -> Result<Auth, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(access_key_id), Some(secret_access_key)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the bucket's keys".into());
        };
        Ok(Auth { access_key_id, secret_access_key, region: var("AWS_DEFAULT_REGION") })
    }
}

/// How long one request may take (a pack of a few hundred MiB over a slow uplink), how long a
/// connection may take to open, and how long retries of one call may go on.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const RETRY_TIMEOUT: Duration = Duration::from_secs(120);

/// The runtime every S3 call runs on: two threads, for the whole process (or why it could not
/// start).
fn runtime() -> Result<&'static tokio::runtime::Runtime, &'static std::io::Error> {
    static RT: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("potluck-s3").enable_all().build()
    })
    .as_ref()
}

/// Runs `fut` on the S3 runtime and waits for it on this thread, whatever thread it is.
fn block<T: Send + 'static>(fut: impl Future<Output = RusticResult<T>> + Send + 'static) -> RusticResult<T> {
    let rt = runtime().map_err(|e| {
        RusticError::new(ErrorKind::Backend, "S3: the client's threads could not start: {error}")
            .attach_context("error", e.to_string())
    })?;
    futures::executor::block_on(rt.spawn(fut))
        .map_err(|e| RusticError::with_source(ErrorKind::Backend, "S3: the request's task failed", e))?
}

fn failed(what: String) -> impl FnOnce(object_store::Error) -> Box<RusticError> {
    move |e| RusticError::with_source(ErrorKind::Backend, format!("S3: {what}"), e)
}

/// A restic repository in a bucket.
pub struct S3Backend {
    location: String,
    store: Arc<AmazonS3>,
    prefix: String,
}

impl S3Backend {
    pub fn new(target: &Target, auth: &Auth) -> Result<S3Backend, String> {
        let options = ClientOptions::new()
            .with_allow_http(target.endpoint.starts_with("http://"))
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        let retry = RetryConfig { max_retries: 4, retry_timeout: RETRY_TIMEOUT, ..RetryConfig::default() };
        let store = AmazonS3Builder::new()
            .with_endpoint(&target.endpoint)
            .with_bucket_name(&target.bucket)
            .with_region(auth.region.as_deref().unwrap_or("us-east-1"))
            .with_access_key_id(&auth.access_key_id)
            .with_secret_access_key(&auth.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| format!("{}: {e}", target.display()))?;
        Ok(S3Backend { location: target.display(), store: Arc::new(store), prefix: target.prefix.clone() })
    }

    fn key(&self, rel: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn path(&self, tpe: FileType, id: &Id) -> ObjectPath {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => self.key("config"),
            FileType::Pack => self.key(&format!("data/{}/{}", &hex[..2], &*hex)),
            _ => self.key(&format!("{}/{}", tpe.dirname(), &*hex)),
        }
    }

    /// Reads an object whole or a range of it, never more than [`MAX_READ`] whatever the server
    /// claims or sends.
    fn read(&self, key: ObjectPath, range: Option<(u64, u32)>) -> RusticResult<Bytes> {
        let store = self.store.clone();
        block(async move {
            let shown = key.to_string();
            let too_large = |n: u64| {
                RusticError::new(
                    ErrorKind::Backend,
                    format!("S3: {shown}: {n} bytes is more than a repository file holds ({MAX_READ} at most)"),
                )
            };
            let options = GetOptions {
                range: range.map(|(offset, length)| GetRange::Bounded(offset..offset + u64::from(length))),
                ..GetOptions::default()
            };
            let got = store.get_opts(&key, options).await.map_err(failed(format!("read {shown}")))?;
            let expected = got.range.end - got.range.start;
            if expected > MAX_READ {
                return Err(too_large(expected));
            }
            let mut buf = Vec::with_capacity(expected as usize);
            let mut body = got.into_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(failed(format!("read {shown}")))?;
                if (buf.len() + chunk.len()) as u64 > expected {
                    return Err(too_large((buf.len() + chunk.len()) as u64));
                }
                buf.extend_from_slice(&chunk);
            }
            if (buf.len() as u64) < expected {
                return Err(RusticError::new(
                    ErrorKind::Backend,
                    format!("S3: read {shown}: the body ended after {} of {expected} bytes", buf.len()),
                ));
            }
            Ok(Bytes::from(buf))
        })
    }
}

impl ReadBackend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        let store = self.store.clone();
        if tpe == FileType::Config {
            let key = self.key("config");
            return block(async move {
                match store.head(&key).await {
                    Ok(meta) => Ok(vec![(Id::default(), u32::try_from(meta.size).unwrap_or(u32::MAX))]),
                    Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                    Err(e) => Err(failed(format!("look for {key}"))(e)),
                }
            });
        }
        let dir = self.key(tpe.dirname());
        block(async move {
            let mut listing = store.list(Some(&dir));
            let mut found = Vec::new();
            let mut seen = 0usize;
            while let Some(meta) = listing.try_next().await.map_err(failed(format!("list {dir}")))? {
                seen += 1;
                if seen > MAX_ENTRIES {
                    return Err(RusticError::new(
                        ErrorKind::Backend,
                        format!("S3: {dir} lists more than {MAX_ENTRIES} objects"),
                    ));
                }
                let Some(name) = meta.location.filename() else { continue };
                if let Some(id) = Id::parse_some(name, tpe) {
                    found.push((id, u32::try_from(meta.size).unwrap_or(u32::MAX)));
                }
            }
            Ok(found)
        })
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.read(self.path(tpe, id), None)
    }

    fn read_partial(&self, tpe: FileType, id: &Id, _cacheable: bool, offset: u32, length: u32) -> RusticResult<Bytes> {
        self.read(self.path(tpe, id), Some((u64::from(offset), length)))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id).to_string()
    }
}

impl WriteBackend for S3Backend {
    /// A bucket has no directories to make; this checks that it is there and the keys may list
    /// it, so that a missing bucket or a wrong key is told before a repository is written.
    fn create(&self) -> RusticResult<()> {
        let store = self.store.clone();
        let prefix = self.key("keys");
        block(async move {
            store
                .list_with_delimiter(Some(&prefix))
                .await
                .map(drop)
                .map_err(failed("list the bucket (does it exist, and may these keys read it?)".into()))
        })
    }

    fn write_bytes(&self, tpe: FileType, id: &Id, _cacheable: bool, content: BytesList) -> RusticResult<()> {
        let store = self.store.clone();
        let key = self.path(tpe, id);
        block(async move {
            // One PUT: S3 makes an object visible whole or not at all.
            let payload: PutPayload = content.into_vec().into_iter().collect();
            store.put(&key, payload).await.map(drop).map_err(failed(format!("write {key}")))
        })
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let store = self.store.clone();
        let key = self.path(tpe, id);
        block(async move { store.delete(&key).await.map_err(failed(format!("remove {key}"))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restics_s3_forms() {
        let t = Target::parse("https://s3.example.org/backups/coop/nightly").unwrap();
        assert_eq!(
            (t.endpoint.as_str(), t.bucket.as_str(), t.prefix.as_str()),
            ("https://s3.example.org", "backups", "coop/nightly")
        );
        assert_eq!(t.display(), "s3:https://s3.example.org/backups/coop/nightly");
        assert_eq!((t.host(), t.port()), ("s3.example.org", 443));
        let t = Target::parse("s3.amazonaws.com/restic-bucket").unwrap();
        assert_eq!((t.endpoint.as_str(), t.prefix.as_str()), ("https://s3.amazonaws.com", ""));
        assert_eq!(Target::parse(&t.display()["s3:".len()..]).unwrap(), t, "display reads back");
        let t = Target::parse("http://127.0.0.1:9000/bucket/").unwrap();
        assert_eq!((t.host(), t.port(), t.prefix.as_str()), ("127.0.0.1", 9000, ""));
        let t = Target::parse("http://[::1]:9000/bucket/x").unwrap();
        assert_eq!((t.host(), t.port()), ("::1", 9000));
        for bad in [
            "https://s3.example.org",
            "https://s3.example.org/",
            "https://key:secret@s3.example.org/bucket",
            "ftp://host/bucket",
            "https://host:port/bucket",
            "https://host/Bucket",
            "https://host/ab",
            "https://host/bucket/../other",
            "https://host/bucket/a//b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_secret_key_is_never_shown() {
        let a = Auth { access_key_id: "AKIDEXAMPLE".into(), secret_access_key: "SECRET".into(), region: None };
        let shown = format!("{a:?}");
        assert!(shown.contains("AKIDEXAMPLE") && !shown.contains("SECRET"), "{shown}");
    }
}
