//! A collective's backups at a glance: each app's volumes (covered, excluded, not backed up),
//! its last checked snapshot and the sizes of its snapshots over time; the repositories; and the
//! parts the app page shows (coverage, snapshots with restore and download).

use crate::api::{self, *};
use crate::components::{format_time, ActionError, ActionResult, ErrorBox, Time};
use crate::model::*;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// A day, in milliseconds: a last backup older than this is shown as late.
const DAY_MS: i64 = 24 * 3600 * 1000;

#[component]
pub fn BackupsPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let add = ServerAction::<AddBackupRepo>::new();
    let remove = ServerAction::<RemoveBackupRepo>::new();
    let start = ServerAction::<StartJob>::new();
    let drills = (ServerAction::<SetDrillSchedule>::new(), ServerAction::<RemoveDrillSchedule>::new());
    let data = Resource::new(
        move || {
            (slug(), add.version().get(), remove.version().get(), drills.0.version().get(), drills.1.version().get())
        },
        |(s, ..)| api::list_backups(s),
    );
    Effect::new(move |_| {
        if let Some(Ok(job)) = start.value().get() {
            let navigate = leptos_router::hooks::use_navigate();
            navigate(&format!("/jobs/{}", job.id), Default::default());
        }
    });
    view! {
        <Title text="Backups"/>
        <h1>"Backups of " <a href=move || format!("/c/{}", slug())>{slug}</a></h1>
        <p class="muted">"What each app's recipe declares with backup-bot-two's labels, and the snapshots Potluck took. A snapshot is kept only when its checks pass: every declared path is in it, and each pre-hook wrote its dump anew."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(d) => view! { <Overview d add remove start drills/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Overview(
    d: CollectiveBackups,
    add: ServerAction<AddBackupRepo>,
    remove: ServerAction<RemoveBackupRepo>,
    start: ServerAction<StartJob>,
    drills: (ServerAction<SetDrillSchedule>, ServerAction<RemoveDrillSchedule>),
) -> impl IntoView {
    let now = d.apps.iter().flat_map(|a| a.backups.first().map(|b| b.taken_at)).max().unwrap_or_default();
    let has_repo = !d.repos.is_empty();
    let can_operate = d.can_operate;
    let rows = d
        .apps
        .clone()
        .into_iter()
        .map(|a| {
                    let slug = d.slug.clone();
                    let last = a.backups.first().cloned();
                    let href = format!("/c/{}/apps/{}#backups", slug, a.domain);
                    let domain = a.domain.clone();
                    let backup_now = (can_operate && has_repo && a.status == AppStatus::Deployed).then(move || view! {
                        <ActionForm action=start attr:class="inline backup-now">
                            <input type="hidden" name="slug" value=slug/>
                            <input type="hidden" name="domain" value=domain/>
                            <input type="hidden" name="kind" value="backup"/>
                            <button type="submit">"Back up now"</button>
                        </ActionForm>
                    });
                    view! {
                        <tr data-app=a.domain.clone()>
                            <td><a href=href>{a.domain.clone()}</a> <div class="muted">{a.recipe.clone()} " · " {a.status.as_str()}</div></td>
                            <td><CoverageChips coverage=a.coverage.clone()/></td>
                            <td class="last-backup">{match last {
                                None => view! { <span class="late">"never"</span> }.into_any(),
                                Some(b) => {
                                    let late = now - b.taken_at > DAY_MS;
                                    view! {
                                        <span class=if late { "late" } else { "fresh" }><Time ms=b.taken_at/></span>
                                        <div class="muted">{human_bytes(b.bytes as u64)} ", " {b.files} " files · " {b.reason.clone()} " · checked"</div>
                                        <div class="drilled">{match a.last_verified {
                                            Some(at) => view! { <span class="chip chip-whole">"restore verified " <Time ms=at/></span> }.into_any(),
                                            None => view! { <span class="chip chip-unknown">"no verified restore"</span> }.into_any(),
                                        }}</div>
                                    }.into_any()
                                }
                            }}</td>
                            <td><SizeChart backups=a.backups.clone()/></td>
                            <td class="schedule-cell">{match a.schedule.clone() {
                                Some(s) => view! { <ScheduleLine s/> }.into_any(),
                                None => view! { <span class="muted">"none"</span> }.into_any(),
                            }}</td>
                            <td>{backup_now}</td>
                        </tr>
                    }
        })
        .collect_view();
    view! {
        <Summary apps=d.apps.clone()/>
        <table id="coverage">
            <thead><tr><th>"App"</th><th>"Volumes"</th><th>"Last snapshot"</th><th>"Sizes over time"</th><th>"Schedule"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <ActionError value=start.value()/>
        <DrillSchedule slug=d.slug.clone() schedule=d.drill_schedule.clone() can_set=d.can_schedule actions=drills/>
        <h2>"Repositories"</h2>
        {(!has_repo).then(|| view! { <p class="warning" id="no-repo">"The collective has no backup repository yet: nothing can be backed up."</p> })}
        <table id="backup-repos">
            <thead><tr><th>"Repository"</th><th>"Where (restic -r)"</th><th>"Snapshots"</th><th>"Added"</th><th></th></tr></thead>
            <tbody>
                {d.repos.iter().map(|r| {
                    let (name, slug) = (r.name.clone(), d.slug.clone());
                    view! {
                        <tr data-repo=r.name.clone()>
                            <td>{r.name.clone()}</td>
                            <td><code>{r.location.clone()}</code>
                                {r.host_key.clone().map(|k| view! { <div class="muted host-key">"host key " <code>{k}</code></div> })}
                                {r.s3_key_id.clone().map(|k| view! { <div class="muted s3-key">"access key " <code>{k}</code></div> })}</td>
                            <td>{r.snapshots} " · " {human_bytes(r.bytes as u64)}</td>
                            <td><Time ms=r.created_at/></td>
                            <td>{d.can_manage.then(|| view! {
                                <ActionForm action=remove attr:class="inline">
                                    <input type="hidden" name="slug" value=slug/>
                                    <input type="hidden" name="name" value=name/>
                                    <button type="submit" title="Potluck forgets it; the repository and its snapshots stay on disk">"Forget"</button>
                                </ActionForm>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <ActionResult value=remove.value() ok="Repository forgotten (its files stay where they are)."/>
        {d.can_manage.then(|| {
            let local = d.local_allowed;
            let where_hint = if local {
                "Empty: on the Potluck machine, in a directory of the collective's own. Or a directory over SFTP on a server of yours, or a bucket: "
            } else {
                "A directory over SFTP on a server of yours, or a bucket (the federation's configuration keeps no repository of this collective on the Potluck machine): "
            };
            view! {
                <h3>"Add a repository"</h3>
                <ActionForm action=add attr:id="add-backup-repo">
                    <input type="hidden" name="slug" value=d.slug.clone()/>
                    <label>"Name " <input name="name" required placeholder="nightly" pattern="[a-z0-9][a-z0-9\\-]{0,39}"/></label>
                    <label>"Password (empty: Potluck makes one and shows it once) " <input name="password" type="password" autocomplete="new-password"/></label>
                    <label>"Where " <input name="location" required=!local placeholder="sftp:backup@backups.example.org:/srv/restic/collective" size="50" maxlength="512"/></label>
                    <p class="muted">{where_hint} <code>"sftp:user@host:/path"</code> ", " <code>"sftp://user@host:port//path"</code> " or " <code>"s3:https://host/bucket/path"</code> " (the bucket must exist)."</p>
                    <details class="sftp">
                        <summary>"SFTP: key and host key"</summary>
                        <label>"Private key Potluck signs in with (OpenSSH or PEM, no passphrase; stored sealed, never shown) "
                            <textarea name="ssh_key" rows="4" cols="64" autocomplete="off" spellcheck="false"></textarea></label>
                        <label>"The server's host key fingerprint (empty: Potluck reads it and shows it to you to check) "
                            <input name="host_key" placeholder="SHA256:…" size="50" pattern="SHA256:[A-Za-z0-9+\\/]{43}"/></label>
                    </details>
                    <details class="s3">
                        <summary>"S3: keys"</summary>
                        <label>"Access key id " <input name="s3_key_id" autocomplete="off" size="30" maxlength="256"/></label>
                        <label>"Secret key (stored sealed, never shown) " <input name="s3_secret" type="password" autocomplete="off" maxlength="256"/></label>
                        <label>"Region (empty: us-east-1) " <input name="s3_region" size="16" maxlength="256" placeholder="us-east-1"/></label>
                    </details>
                    <p class="muted">"The password is stored sealed; restic needs it to read the repository without Potluck."</p>
                    <button type="submit">"Add"</button>
                </ActionForm>
                {move || match add.value().get() {
                    Some(Ok(added)) => view! {
                        <div class="ok" role="status" id="repo-added">
                            "Repository " <strong>{added.repo.name.clone()}</strong> " added at " <code>{added.repo.location.clone()}</code> "."
                            {added.password.map(|p| view! {
                                <p>"Its password, shown this once: " <code id="repo-password">{p.0}</code></p>
                            })}
                        </div>
                    }.into_any(),
                    Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                    None => ().into_any(),
                }}
            }
        })}
    }
}

/// The collective's scheduled restore drills: when, how the last round went (or how far one
/// is), and for who may schedule, the form.
#[component]
fn DrillSchedule(
    slug: String,
    schedule: Option<DrillScheduleView>,
    can_set: bool,
    actions: (ServerAction<SetDrillSchedule>, ServerAction<RemoveDrillSchedule>),
) -> impl IntoView {
    let (set, remove) = actions;
    let cron = schedule.as_ref().map(|s| s.cron.clone()).unwrap_or_else(|| "0 4 * * 0".into());
    let has = schedule.is_some();
    let line = match schedule {
        None => view! { <p class="muted">"No scheduled drills: restores are proven only when someone drills a snapshot, or a backup schedule drills its own."</p> }.into_any(),
        Some(s) => {
            let state = if s.running { "running" } else if s.last_result.as_deref().is_some_and(|r| r.contains("FAILED")) { "failed" } else { "ok" };
            view! {
                <div class="schedule" data-cron=s.cron.clone() data-state=state>
                    <strong>{format!("{} (UTC)", if s.described.is_empty() { s.cron.clone() } else { s.described.trim_end_matches('.').to_string() })}</strong>
                    ": the newest snapshot of every app not verified yet, one app after another"
                    <div class="muted">"next round " <Time ms=s.next_run_at/>
                        {s.last_run_at.map(|at| view! { " · last began " <Time ms=at/> })}
                    </div>
                    {s.last_result.clone().map(|r| view! {
                        <div class=format!("drill-result {state}")>{if s.running { "under way: " } else { "last round: " }} {r}</div>
                    })}
                </div>
            }.into_any()
        }
    };
    let form = can_set.then(|| {
        let slug2 = slug.clone();
        view! {
            <details class="schedule-form">
                <summary>{if has { "Change the drill schedule" } else { "Schedule drills" }}</summary>
                <ActionForm action=set attr:id="set-drill-schedule">
                    <input type="hidden" name="slug" value=slug/>
                    <label>"When (cron, UTC) " <input name="cron" required value=cron maxlength="120" placeholder="0 4 * * 0"/></label>
                    <p class="muted">"Each drill restores a snapshot into a throw-away stack on the app's server (its own secrets and volumes, no published port), waits for it to converge and pass its healthchecks, then removes it."</p>
                    <button type="submit">"Save drill schedule"</button>
                </ActionForm>
                {has.then(|| view! {
                    <ActionForm action=remove attr:id="remove-drill-schedule" attr:class="inline">
                        <input type="hidden" name="slug" value=slug2/>
                        <button type="submit">"Stop scheduled drills"</button>
                    </ActionForm>
                })}
            </details>
        }
    });
    view! {
        <h2>"Restore drills"</h2>
        <div id="drill-schedule">
            {line}
            <ActionError value=set.value()/>
            <ActionError value=remove.value()/>
            {form}
        </div>
    }
}

/// A summary chip, faded when it counts nothing (a red "0 not covered" reads as an alarm).
fn chip(count: usize, state: &str) -> String {
    if count == 0 {
        format!("chip chip-{state} zero")
    } else {
        format!("chip chip-{state}")
    }
}

/// How many apps have every volume covered, some, or none at all.
#[component]
fn Summary(apps: Vec<AppBackups>) -> impl IntoView {
    let mut counts = [0usize; 4]; // covered, partly, uncovered, unknown
    for a in &apps {
        match &a.coverage {
            None => counts[3] += 1,
            Some(c) => {
                let missing = c.iter().filter(|v| v.state == VolumeState::Undeclared).count();
                let idx = if missing == 0 {
                    0
                } else if missing < c.len() {
                    1
                } else {
                    2
                };
                counts[idx] += 1;
            }
        }
    }
    view! {
        <p id="coverage-summary" class="summary">
            <span class=chip(counts[0], "whole")>{format!("{} covered", counts[0])}</span> " "
            <span class=chip(counts[1], "paths")>{format!("{} partly", counts[1])}</span> " "
            <span class=chip(counts[2], "undeclared")>{format!("{} not covered", counts[2])}</span> " "
            <span class=chip(counts[3], "unknown")>{format!("{} not deployed yet", counts[3])}</span>
        </p>
    }
}

/// Each volume as a coloured chip: green backed up, grey excluded, red not backed up.
#[component]
pub fn CoverageChips(coverage: Option<Vec<VolumeCoverage>>) -> impl IntoView {
    match coverage {
        None => view! { <span class="muted">"known after the first deploy"</span> }.into_any(),
        Some(list) if list.is_empty() => view! { <span class="muted">"no volumes"</span> }.into_any(),
        Some(list) => view! {
            <ul class="chips">
                {list.into_iter().map(|v| {
                    let title = match (&v.service, v.paths.is_empty()) {
                        (Some(s), true) => format!("{} (through {s})", v.state.label()),
                        (Some(s), false) => format!("{} through {s}: {}", v.state.label(), v.paths.join(", ")),
                        (None, _) => v.state.label().to_string(),
                    };
                    view! { <li class=format!("chip chip-{}", v.state.as_str()) title=title.clone() data-state=v.state.as_str()>{v.volume.clone()} <span class="sr">{format!(": {title}")}</span></li> }
                }).collect_view()}
            </ul>
        }
        .into_any(),
    }
}

/// The sizes of an app's snapshots, oldest to newest, as bars.
#[component]
pub fn SizeChart(backups: Vec<BackupView>) -> impl IntoView {
    if backups.is_empty() {
        return ().into_any();
    }
    const W: f64 = 150.0;
    const H: f64 = 32.0;
    let max = backups.iter().map(|b| b.bytes).max().unwrap_or(1).max(1) as f64;
    let n = backups.len() as f64;
    let bar = (W / n).min(12.0);
    let bars = backups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let h = ((b.bytes as f64 / max) * (H - 2.0)).max(1.0);
            let title = format!("{}: {}", format_time(b.taken_at), human_bytes(b.bytes as u64));
            view! {
                <rect x=format!("{:.1}", i as f64 * bar) y=format!("{:.1}", H - h) width=format!("{:.1}", (bar - 1.0).max(1.0)) height=format!("{h:.1}")>
                    <title>{title}</title>
                </rect>
            }
        })
        .collect_view();
    view! {
        <svg class="sizes" width=W height=H viewBox=format!("0 0 {W} {H}") role="img"
            aria-label=format!("sizes of the last {} snapshots, up to {}", backups.len(), human_bytes(max as u64))>
            {bars}
        </svg>
    }
    .into_any()
}

/// The app page's backups: coverage, back up now, and each snapshot with restore and download.
#[component]
pub fn AppBackupsSection(d: AppDetail, start: ServerAction<StartJob>) -> impl IntoView {
    let a = d.app.clone();
    let deployed = a.status == AppStatus::Deployed;
    let operate = d.can_operate && deployed && !d.backup_repos.is_empty();
    let (slug, domain) = (a.collective.clone(), a.domain.clone());
    let can_operate = d.can_operate;
    let rows = d
        .backups
        .clone()
        .into_iter()
        .map(|b| {
            let (slug, domain) = (slug.clone(), domain.clone());
            let download = format!("/c/{slug}/apps/{domain}/backups/{}", b.short_id());
            let short = b.short_id().to_string();
            let snapshot = b.snapshot.clone();
            let drill = can_operate.then(|| {
                let (slug, domain, snapshot) = (slug.clone(), domain.clone(), b.snapshot.clone());
                view! {
                    <ActionForm action=start attr:class="inline drill-form">
                        <input type="hidden" name="slug" value=slug/>
                        <input type="hidden" name="domain" value=domain/>
                        <input type="hidden" name="kind" value="drill"/>
                        <input type="hidden" name="options[snapshot]" value=snapshot/>
                        <button type="submit" title="Restore it into a throw-away stack that must converge and pass its healthchecks, then remove it">"Drill"</button>
                    </ActionForm>
                }
            });
            let verified = match (b.drill_ok, b.drilled_at) {
                (Some(true), Some(at)) => view! { <span class="chip chip-whole" title=b.drill_result.clone().unwrap_or_default()>"verified " <Time ms=at/></span> }.into_any(),
                (Some(false), Some(at)) => view! { <span class="chip chip-undeclared" title=b.drill_result.clone().unwrap_or_default()>"drill failed " <Time ms=at/></span> }.into_any(),
                _ => view! { <span class="muted">"not drilled"</span> }.into_any(),
            };
            let restore = (can_operate && deployed).then(move || view! {
                <details class="restore">
                    <summary>"Restore"</summary>
                    <ActionForm action=start attr:class="restore-form">
                        <input type="hidden" name="slug" value=slug/>
                        <input type="hidden" name="domain" value=domain/>
                        <input type="hidden" name="kind" value="restore"/>
                        <input type="hidden" name="options[snapshot]" value=snapshot/>
                        <label class="check"><input type="checkbox" name="confirm" value="1" required/> "Write this snapshot over the app's volumes"</label>
                        <button type="submit" class="danger">"Restore " {short}</button>
                    </ActionForm>
                </details>
            });
            view! {
                <tr data-snapshot=b.snapshot.clone()>
                    <td><code>{b.short_id().to_string()}</code> " " <span class="muted">{b.repo.clone()}</span></td>
                    <td><Time ms=b.taken_at/></td>
                    <td>{b.reason.clone()}</td>
                    <td><code>{b.version.clone().unwrap_or_default()}</code></td>
                    <td>{human_bytes(b.bytes as u64)} " · " {b.files} " files"</td>
                    <td class="verified">{verified}</td>
                    <td>
                        {can_operate.then(|| view! { <a href=download rel="external" class="download">"Download (tar)"</a> })}
                        {drill}
                        {restore}
                    </td>
                </tr>
            }
        })
        .collect_view();
    let repos = d.backup_repos.clone();
    let (offer_slug, offer_domain) = (d.app.collective.clone(), d.app.domain.clone());
    let offer = restore_offer(&d).map(move |(job, snapshot)| {
        let short = snapshot.short_id().to_string();
        view! {
            <div class="warning" id="restore-offer" role="alert">
                <p>{format!("The upgrade to {} failed: ", job.target_version.clone().unwrap_or_default())} {job.result.clone().unwrap_or_default()}</p>
                {can_operate.then(|| view! {
                    <ActionForm action=start attr:class="inline">
                        <input type="hidden" name="slug" value=offer_slug/>
                        <input type="hidden" name="domain" value=offer_domain/>
                        <input type="hidden" name="kind" value="restore"/>
                        <input type="hidden" name="options[snapshot]" value=snapshot.snapshot.clone()/>
                        <label class="check"><input type="checkbox" name="confirm" value="1" required/> "Write it over the app's volumes"</label>
                        <button type="submit" class="danger">{format!("Restore snapshot {short}, taken before the upgrade")}</button>
                    </ActionForm>
                })}
            </div>
        }
    });
    view! {
        <section id="backups">
            <h2>"Backups"</h2>
            {offer}
            // A block, not a paragraph: the chips are a list, which a paragraph cannot hold
            // (the browser would close it early and the page would not hydrate).
            <div class="coverage"><CoverageChips coverage=d.coverage.clone()/> " " <a href=format!("/c/{}/backups", d.app.collective)>"the collective's backups"</a></div>
            {d.backup_repos.is_empty().then(|| view! { <p class="muted">"The collective has no backup repository yet."</p> })}
            {operate.then(move || view! {
                <ActionForm action=start attr:id="backup-now" attr:class="inline">
                    <input type="hidden" name="slug" value=a.collective.clone()/>
                    <input type="hidden" name="domain" value=a.domain.clone()/>
                    <input type="hidden" name="kind" value="backup"/>
                    {(repos.len() > 1).then(|| view! {
                        <select name="options[repo]">{repos.iter().map(|r| view! { <option value=r.clone()>{r.clone()}</option> }).collect_view()}</select>
                    })}
                    <button type="submit">"Back up now"</button>
                </ActionForm>
            })}
            <ScheduleSection d=d.clone()/>
            {(!d.backups.is_empty()).then(|| view! { <SizeChart backups=d.backups.clone()/> })}
            <table id="snapshots">
                <thead><tr><th>"Snapshot"</th><th>"Taken"</th><th>"Why"</th><th>"Version"</th><th>"Size"</th><th>"Restore drill"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

/// The app's last job when it is a failed upgrade, with the snapshot taken before it: what a
/// restore in one action puts back.
fn restore_offer(d: &AppDetail) -> Option<(JobSummary, BackupView)> {
    let last = d.jobs.first().filter(|j| j.kind == JobKind::Upgrade && j.state == JobState::Failed)?;
    let snapshot = d.backups.iter().find(|b| b.job_id == Some(last.id) && b.reason == "before-upgrade")?;
    Some((last.clone(), snapshot.clone()))
}

/// What a schedule does, in one line: when, where to, what it keeps, and how it last went.
#[component]
pub fn ScheduleLine(s: BackupScheduleView) -> impl IntoView {
    view! {
        <div class="schedule" data-cron=s.cron.clone()>
            <strong>{format!("{} (UTC)", if s.described.is_empty() { s.cron.clone() } else { s.described.trim_end_matches('.').to_string() })}</strong>
            " into " {s.repo.clone()} " · keeps " {s.keep.summary()}
            {s.drill.then_some(" · each snapshot restore-drilled")}
            {s.overdue_since.map(|at| view! {
                <div class="overdue state-failed">"backups overdue since " <Time ms=at/>
                    ": two scheduled runs came and went without a snapshot"</div>
            })}
            <div class="muted">"next run " <Time ms=s.next_run_at/>
                {s.last_run_at.map(|at| view! { " · last " <Time ms=at/> })}
                {s.last_result.clone().map(|r| {
                    let href = s.last_job_id.map(|j| format!("/jobs/{j}"));
                    view! { ": " <a href=href class="last-result">{r}</a> }
                })}
            </div>
        </div>
    }
}

/// The app page's schedule: what it is, and (for who may manage the app) the form that sets or
/// removes it.
#[component]
fn ScheduleSection(d: AppDetail) -> impl IntoView {
    let set = ServerAction::<SetBackupSchedule>::new();
    let remove = ServerAction::<RemoveBackupSchedule>::new();
    let initial = d.backup_schedule.clone();
    let current = move || {
        // The newest of: what the page loaded, what was just set, or removed.
        let (sv, rv) = (set.version().get(), remove.version().get());
        match (set.value().get(), remove.value().get()) {
            (_, Some(Ok(()))) if rv >= sv => None,
            (Some(Ok(view)), _) => Some(view),
            _ => initial.clone(),
        }
    };
    let a = d.app.clone();
    let keep = d.backup_schedule.as_ref().map(|s| s.keep).unwrap_or(KeepRules {
        daily: 7,
        weekly: 4,
        monthly: 6,
        ..KeepRules::default()
    });
    let cron = d.backup_schedule.as_ref().map(|s| s.cron.clone()).unwrap_or_else(|| "30 3 * * *".into());
    let drill = d.backup_schedule.as_ref().is_some_and(|s| s.drill);
    let repos = d.backup_repos.clone();
    let form = (d.can_manage && !repos.is_empty()).then(move || {
        let number = move |name: &'static str, label: &'static str, value: u32| view! {
            <label>{label} " " <input type="number" name=name min="0" max="36500" value=value.to_string() size="4"/></label>
        };
        let (slug, domain) = (a.collective.clone(), a.domain.clone());
        let (slug2, domain2) = (a.collective.clone(), a.domain.clone());
        view! {
            <details class="schedule-form">
                <summary>"Set the schedule"</summary>
                <ActionForm action=set attr:id="set-schedule">
                    <input type="hidden" name="slug" value=slug/>
                    <input type="hidden" name="domain" value=domain/>
                    <label>"When (cron, UTC) " <input name="cron" required value=cron maxlength="120" placeholder="30 3 * * *"/></label>
                    <label>"Into " <select name="repo">{repos.iter().map(|r| view! { <option value=r.clone()>{r.clone()}</option> }).collect_view()}</select></label>
                    <fieldset>
                        <legend>"Keep (restic's rules for the snapshots this schedule takes; 0: rule not used, all 0: keep everything)"</legend>
                        {number("keep_last", "last", keep.last)}
                        {number("keep_hourly", "hourly", keep.hourly)}
                        {number("keep_daily", "daily", keep.daily)}
                        {number("keep_weekly", "weekly", keep.weekly)}
                        {number("keep_monthly", "monthly", keep.monthly)}
                        {number("keep_yearly", "yearly", keep.yearly)}
                    </fieldset>
                    <label class="check"><input type="checkbox" name="drill" value="true" checked=drill/> "Restore-drill each snapshot it takes (in a throw-away stack that must converge and pass its healthchecks)"</label>
                    <p class="muted">"Snapshots taken by hand or before an upgrade are never forgotten by the schedule."</p>
                    <button type="submit">"Save schedule"</button>
                </ActionForm>
                <ActionForm action=remove attr:id="remove-schedule" attr:class="inline">
                    <input type="hidden" name="slug" value=slug2/>
                    <input type="hidden" name="domain" value=domain2/>
                    <button type="submit">"Stop scheduled backups"</button>
                </ActionForm>
            </details>
        }
    });
    view! {
        <div id="backup-schedule">
            {move || match current() {
                Some(s) => view! { <ScheduleLine s/> }.into_any(),
                None => view! { <p class="muted">"No scheduled backups."</p> }.into_any(),
            }}
            <ActionError value=set.value()/>
            <ActionError value=remove.value()/>
            {form}
        </div>
    }
}
