//! Backups against the real parts: a stack of the `backed-up` fixture recipe on the test swarm,
//! `potluck backup` against it and a restic repository on disk, and Debian's `restic` reading
//! what Potluck wrote. The suite does not touch the database (it runs in the SQLite pass only).

use potluck_tests::potluck_bin;
use potluck_tests::recipes::fixture_recipe;
use potluck_tests::swarm::{self, docker, sh};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "correct horse battery staple";

struct Run {
    code: i32,
    stdout: String,
    all: String,
}

fn potluck(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(potluck_bin());
    cmd.args(args).env_remove("RESTIC_PASSWORD").env_remove("RESTIC_PASSWORD_FILE").env_remove("DOCKER_HOST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    Run { code: out.status.code().unwrap_or(-1), stdout, all }
}

fn restic(repo: &Path, args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .expect("restic is installed by scripts/setup.sh (WITH_TEST_SERVICES=1)");
    (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).to_string())
}

fn snapshots(repo: &Path) -> Vec<Value> {
    let (ok, out, err) = restic(repo, &["snapshots", "--json"]);
    assert!(ok, "restic snapshots: {err}");
    serde_json::from_slice(&out).unwrap()
}

struct Stack {
    name: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        swarm::remove_stack_and_volumes(&self.name);
    }
}

/// Deploys the fixture as a stack named `<prefix>_<random>`: its volumes are new, whatever an
/// earlier or a concurrent run on this swarm left under the same prefix.
fn deploy(dir: &Path, prefix: &str) -> Stack {
    let name = format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let name = name.as_str();
    let env = dir.join(format!("{name}.env"));
    std::fs::write(&env, "TYPE=backed-up\nDOMAIN=backed-up.example.com\nENABLE_BACKUPS=true\n").unwrap();
    let recipe = fixture_recipe("backed-up");
    let run = potluck(
        &[
            "stack",
            "deploy",
            "--recipe",
            recipe.to_str().unwrap(),
            "--env",
            env.to_str().unwrap(),
            "--stack",
            name,
            "--resolve-image",
            "never",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "deploy: {}", run.all);
    Stack { name: name.to_string() }
}

#[test]
fn a_backup_restores_byte_for_byte_and_restic_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let stack = deploy(dir.path(), "bk_roundtrip");
    let s = stack.name.as_str();
    let repo = dir.path().join("repo");
    let repo_arg = repo.to_str().unwrap();
    let pw = [("RESTIC_PASSWORD", PASSWORD)];

    // Data in every volume: rows the pre-hook dumps, files (one larger than what Potluck holds
    // in memory, in a sub-directory, with a symlink), and a cache the recipe excludes.
    sh(s, "db", "printf 'row 1\\n' > /var/lib/db/table.1 && printf 'row 2\\n' > /var/lib/db/table.2");
    sh(
        s,
        "app",
        "mkdir -p /srv/files/sub && printf 'hello\\n' > /srv/files/a.txt && \
         dd if=/dev/urandom of=/srv/files/sub/big.bin bs=1M count=6 2>/dev/null && chmod 640 /srv/files/a.txt && \
         ln -s sub/big.bin /srv/files/link && printf 'junk' > /cache/junk",
    );
    let files_before = sh(s, "app", "cd /srv/files && sha256sum a.txt sub/big.bin && stat -c '%a %n' a.txt");

    let cov = potluck(&["backup", "coverage", "--stack", s], &[]);
    assert_eq!(cov.code, 0, "{}", cov.all);
    assert!(cov.stdout.contains(&format!("volume cache ({s}_cache): excluded by app")), "{}", cov.stdout);
    assert!(
        cov.stdout.contains(&format!("volume db-data ({s}_db-data): backed up through db: dump.sql")),
        "{}",
        cov.stdout
    );
    assert!(cov.stdout.contains(&format!("volume files ({s}_files): backed up whole through app")), "{}", cov.stdout);

    // Without a password there is nothing to do, and nothing is created.
    let refused = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg], &[]);
    assert_ne!(refused.code, 0);
    assert!(refused.all.contains("RESTIC_PASSWORD"), "{}", refused.all);
    assert!(!repo.exists(), "a refused backup created the repository");

    let made = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg, "--recipe", "backed-up"], &pw);
    assert_eq!(made.code, 0, "backup: {}", made.all);
    assert!(made.stdout.contains("saved") && made.stdout.contains("checked"), "{}", made.stdout);

    // restic itself reads it: tags, backup-bot-two's paths, the dump's content, no cache.
    let list = snapshots(&repo);
    assert_eq!(list.len(), 1, "{list:?}");
    let tags: Vec<&str> = list[0]["tags"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for t in
        ["potluck", format!("stack:{s}").as_str(), format!("app:{s}").as_str(), "recipe:backed-up", "trigger:manual"]
    {
        assert!(tags.contains(&t), "tag {t} missing from {tags:?}");
    }
    let (ok, dump, err) =
        restic(&repo, &["dump", "latest", &format!("/var/lib/docker/volumes/{s}_db-data/_data/dump.sql")]);
    assert!(ok, "restic dump: {err}");
    assert_eq!(String::from_utf8_lossy(&dump), "row 1\nrow 2\n");
    let (ok, listing, err) = restic(&repo, &["ls", "latest"]);
    assert!(ok, "restic ls: {err}");
    let listing = String::from_utf8_lossy(&listing);
    assert!(listing.contains(&format!("/var/lib/docker/volumes/{s}_files/_data/sub/big.bin")), "{listing}");
    assert!(!listing.contains("junk"), "the excluded cache was backed up: {listing}");
    assert!(!listing.contains("table.1"), "only the declared dump of db-data is backed up: {listing}");
    let (ok, _, err) = restic(&repo, &["check", "--read-data"]);
    assert!(ok, "restic check: {err}");

    let listed = potluck(&["backup", "list", "--stack", s, "--repo", repo_arg], &pw);
    assert_eq!(listed.code, 0, "{}", listed.all);
    assert!(listed.stdout.contains("manual"), "{}", listed.stdout);

    // The data is lost; the restore brings it back byte for byte and runs the restore hook.
    sh(s, "app", "rm -rf /srv/files/* && printf 'other' > /cache/junk");
    sh(s, "db", "rm -f /var/lib/db/*");
    let restored = potluck(&["backup", "restore", "--stack", s, "--repo", repo_arg], &pw);
    assert_eq!(restored.code, 0, "restore: {}", restored.all);
    assert_eq!(sh(s, "app", "cd /srv/files && sha256sum a.txt sub/big.bin && stat -c '%a %n' a.txt"), files_before);
    assert_eq!(sh(s, "app", "readlink /srv/files/link"), "sub/big.bin\n");
    assert_eq!(sh(s, "db", "cat /var/lib/db/table.restored"), "row 1\nrow 2\n", "the restore post-hook ran");
    assert_eq!(sh(s, "app", "cat /cache/junk"), "other", "the excluded cache was restored");
}

#[test]
fn a_backup_that_captures_nothing_new_fails_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stack = deploy(dir.path(), "bk_checks");
    let s = stack.name.as_str();
    let repo = dir.path().join("repo");
    let repo_arg = repo.to_str().unwrap();
    let pw = [("RESTIC_PASSWORD", PASSWORD)];
    sh(s, "db", "printf 'row\\n' > /var/lib/db/table.1");
    sh(s, "app", "printf 'x' > /srv/files/x");
    let first = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg], &pw);
    assert_eq!(first.code, 0, "{}", first.all);

    // A pre-hook that no longer writes the dump: the dump on disk is the previous one.
    docker(&["service", "update", "--quiet", "--label-add", "backupbot.backup.pre-hook=true", &format!("{s}_db")]);
    let stale = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg], &pw);
    assert_ne!(stale.code, 0, "a stale dump passed: {}", stale.all);
    assert!(stale.all.contains("is the previous one"), "{}", stale.all);
    assert_eq!(snapshots(&repo).len(), 1, "a failed backup left a snapshot");

    // A pre-hook that fails names its exit code and its output.
    docker(&[
        "service",
        "update",
        "--quiet",
        "--label-add",
        "backupbot.backup.pre-hook=sh -c 'echo disk full >&2; exit 3'",
        &format!("{s}_db"),
    ]);
    let failed = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg], &pw);
    assert_ne!(failed.code, 0);
    assert!(failed.all.contains("failed (exit 3)") && failed.all.contains("disk full"), "{}", failed.all);
    assert_eq!(snapshots(&repo).len(), 1);

    // The container dies during the backup: the backup fails naming the service, keeps nothing,
    // and the next one (on the container the swarm starts instead) works again.
    docker(&["service", "update", "--quiet", "--label-add", "backupbot.backup.pre-hook=kill 1", &format!("{s}_db")]);
    let died = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg], &pw);
    assert_ne!(died.code, 0, "{}", died.all);
    assert!(died.all.contains("db"), "{}", died.all);
    assert_eq!(snapshots(&repo).len(), 1);

    // A repository that cannot be written is named with the reason.
    let nowhere = potluck(&["backup", "create", "--stack", s, "--repo", "/etc/hostname/repo"], &pw);
    assert_ne!(nowhere.code, 0);
    assert!(nowhere.all.contains("/etc/hostname/repo"), "{}", nowhere.all);

    // A wrong password is refused, and the repository is left as it was.
    let wrong = potluck(&["backup", "list", "--stack", s, "--repo", repo_arg], &[("RESTIC_PASSWORD", "wrong")]);
    assert_ne!(wrong.code, 0);
    assert_eq!(snapshots(&repo).len(), 1);

    // Backups switched off by the operator (ENABLE_BACKUPS=false) are refused with the reason.
    docker(&["service", "update", "--quiet", "--label-add", "backupbot.backup=false", &format!("{s}_db")]);
    docker(&["service", "update", "--quiet", "--label-add", "backupbot.backup=false", &format!("{s}_app")]);
    let off = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg], &pw);
    assert_ne!(off.code, 0);
    assert!(off.all.contains("declares no backups"), "{}", off.all);
}

/// A repository on a file system that fills up mid-backup: the backup fails naming the reason,
/// keeps no snapshot, and the repository stays readable with the snapshots it had.
#[test]
fn a_repository_that_fills_up_fails_the_backup_and_stays_readable() {
    // A real full disk: a 4 MiB tmpfs. Mounting needs root, which `make test` runs as.
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    if !root {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: a full disk is mounted for this test");
        eprintln!("skipped: mounting a small tmpfs as a full disk needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stack = deploy(dir.path(), "bk_full");
    let s = stack.name.as_str();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"]).arg(&disk).status().unwrap();
    assert!(mounted.success(), "mount a tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&disk);
    let repo = disk.join("repo");
    let repo_arg = repo.to_str().unwrap();
    let pw = [("RESTIC_PASSWORD", PASSWORD)];
    sh(s, "db", "printf 'row\\n' > /var/lib/db/table.1");
    sh(s, "app", "printf 'small' > /srv/files/small");
    let first = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg], &pw);
    assert_eq!(first.code, 0, "{}", first.all);

    // Incompressible data twice the size of the disk.
    sh(s, "app", "dd if=/dev/urandom of=/srv/files/big.bin bs=1M count=8 2>/dev/null");
    let full = potluck(&["backup", "create", "--stack", s, "--repo", repo_arg], &pw);
    assert_ne!(full.code, 0, "a backup into a full repository passed: {}", full.all);
    assert!(full.all.to_lowercase().contains("no space left"), "the reason is named: {}", full.all);
    assert_eq!(snapshots(&repo).len(), 1, "the failed backup left a snapshot");
    let (ok, _, err) = restic(&repo, &["check"]);
    assert!(ok, "the repository stays consistent: {err}");
    let listed = potluck(&["backup", "list", "--stack", s, "--repo", repo_arg], &pw);
    assert_eq!(listed.code, 0, "Potluck still reads the repository: {}", listed.all);
}

/// A repository over SFTP (the harness's sshd): written with the host key checked against
/// `~/.ssh/known_hosts` and the key held in memory, read back by restic over its own `ssh`, and
/// restored from; a host whose key is unknown or different is refused before anything is sent.
#[test]
fn a_repository_over_sftp_checks_the_host_key_and_restic_reads_it() {
    let ssh = potluck_tests::required_env("POTLUCK_TEST_SSH");
    let key = potluck_tests::required_env("POTLUCK_TEST_SSH_KEY");
    let (user_host, port) = ssh.rsplit_once(':').expect("user@host:port");
    let dir = tempfile::tempdir().unwrap();
    let stack = deploy(dir.path(), "bk_sftp");
    let s = stack.name.as_str();
    let remote = dir.path().join("remote-repo");
    let url = format!("sftp://{user_host}:{port}/{}", remote.display());
    let env = [("RESTIC_PASSWORD", PASSWORD), ("POTLUCK_SFTP_KEY_FILE", key.as_str())];
    sh(s, "db", "printf 'row 1\\n' > /var/lib/db/table.1");
    sh(s, "app", "printf 'over ssh\\n' > /srv/files/a.txt");
    let created = potluck(&["backup", "create", "--stack", s, "--repo", &url], &env);
    assert_eq!(created.code, 0, "{}", created.all);
    let listed = potluck(&["backup", "list", "--stack", s, "--repo", &url], &env);
    assert_eq!(listed.code, 0, "{}", listed.all);

    // restic reads it over SFTP with its own ssh.
    let (host, _) = user_host.split_once('@').map(|(u, h)| (h, u)).unwrap();
    let command = format!("ssh -p {port} -i {key} -o BatchMode=yes {user_host} -s sftp");
    let out = Command::new("restic")
        .args(["-r", &format!("sftp:{user_host}:{}", remote.display()), "-o"])
        .arg(format!("sftp.command={command}"))
        .args(["snapshots", "--json"])
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "restic over sftp ({host}): {}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0]["tags"].as_array().unwrap().iter().any(|t| t == &format!("stack:{s}")), "{:?}", list[0]);

    // Restored over SFTP, byte for byte.
    sh(s, "app", "printf 'changed\\n' > /srv/files/a.txt");
    let restored = potluck(&["backup", "restore", "--stack", s, "--repo", &url], &env);
    assert_eq!(restored.code, 0, "{}", restored.all);
    assert_eq!(sh(s, "app", "cat /srv/files/a.txt"), "over ssh\n");

    // A host key that is not the one known, or not known at all: refused, naming the key seen.
    let other = dir.path().join("other_key");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).status().unwrap();
    assert!(made.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_pub: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, format!("[{host}]:{port} {}\n", other_pub.join(" "))).unwrap();
    let known_arg = known.to_str().unwrap();
    let with_known = [env[0], env[1], ("POTLUCK_SFTP_KNOWN_HOSTS", known_arg)];
    let refused = potluck(&["backup", "list", "--stack", s, "--repo", &url], &with_known);
    assert_ne!(refused.code, 0, "{}", refused.all);
    assert!(refused.all.contains("differs") && refused.all.contains("SHA256:"), "{}", refused.all);
    std::fs::write(&known, "").unwrap();
    let unknown = potluck(&["backup", "list", "--stack", s, "--repo", &url], &with_known);
    assert_ne!(unknown.code, 0, "{}", unknown.all);
    assert!(unknown.all.contains("is not in"), "{}", unknown.all);
}

/// A repository in an S3 bucket (the harness's moto server): written by Potluck with the keys of
/// restic's environment variables, read by restic's own S3 client, restored from; a bucket that
/// is not there and an endpoint that does not answer are named in the error.
#[test]
fn a_repository_in_an_s3_bucket_is_read_by_restic_and_restored_from() {
    let (endpoint, bucket) = potluck_tests::new_s3_bucket("bk-s3");
    let dir = tempfile::tempdir().unwrap();
    let stack = deploy(dir.path(), "bk_s3");
    let s = stack.name.as_str();
    let url = format!("s3:{endpoint}/{bucket}/coop/nightly");
    let [key_id, secret] = potluck_tests::S3_KEYS;
    let env = [("RESTIC_PASSWORD", PASSWORD), key_id, secret];
    sh(s, "db", "printf 'row 1\\n' > /var/lib/db/table.1");
    sh(s, "app", "mkdir -p /srv/files/sub && printf 'in a bucket\\n' > /srv/files/a.txt && dd if=/dev/urandom of=/srv/files/sub/big.bin bs=1M count=6 2>/dev/null");
    let before = sh(s, "app", "md5sum /srv/files/sub/big.bin");
    let created = potluck(&["backup", "create", "--stack", s, "--repo", &url], &env);
    assert_eq!(created.code, 0, "{}", created.all);

    // restic reads it with its own S3 client, and checks every pack.
    let restic_s3 = |args: &[&str]| {
        Command::new("restic")
            .args(["-r", &url])
            .args(args)
            .env("RESTIC_PASSWORD", PASSWORD)
            .env(key_id.0, key_id.1)
            .env(secret.0, secret.1)
            .env("RESTIC_CACHE_DIR", dir.path().join("cache"))
            .output()
            .unwrap()
    };
    let out = restic_s3(&["snapshots", "--json"]);
    assert!(out.status.success(), "restic over s3: {}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0]["tags"].as_array().unwrap().iter().any(|t| t == &format!("stack:{s}")), "{:?}", list[0]);
    let check = restic_s3(&["check", "--read-data"]);
    assert!(check.status.success(), "restic check: {}", String::from_utf8_lossy(&check.stderr));

    // A second backup reuses what the bucket holds; the restore is byte for byte.
    let again = potluck(&["backup", "create", "--stack", s, "--repo", &url], &env);
    assert_eq!(again.code, 0, "{}", again.all);
    sh(s, "app", "printf 'changed\\n' > /srv/files/a.txt && rm /srv/files/sub/big.bin");
    let restored = potluck(&["backup", "restore", "--stack", s, "--repo", &url], &env);
    assert_eq!(restored.code, 0, "{}", restored.all);
    assert_eq!(sh(s, "app", "cat /srv/files/a.txt"), "in a bucket\n");
    assert_eq!(sh(s, "app", "md5sum /srv/files/sub/big.bin"), before);

    // No keys, no bucket, no server: each refused with the reason.
    let no_keys = potluck(&["backup", "list", "--stack", s, "--repo", &url], &env[..1]);
    assert_ne!(no_keys.code, 0);
    assert!(no_keys.all.contains("AWS_ACCESS_KEY_ID"), "{}", no_keys.all);
    let missing = format!("s3:{endpoint}/no-such-bucket-{bucket}");
    let missing = &missing[..missing.len().min(endpoint.len() + 3 + 63)];
    let no_bucket = potluck(&["backup", "create", "--stack", s, "--repo", missing], &env);
    assert_ne!(no_bucket.code, 0);
    assert!(no_bucket.all.contains("does it exist"), "{}", no_bucket.all);
    let nowhere = potluck(&["backup", "list", "--stack", s, "--repo", "s3:http://127.0.0.1:1/bucket"], &env);
    assert_ne!(nowhere.code, 0);
    assert!(nowhere.all.contains("127.0.0.1:1"), "{}", nowhere.all);
}
