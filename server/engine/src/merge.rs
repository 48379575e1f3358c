//! Merging the files of `COMPOSE_FILE`, left to right, with docker/cli's rules: a later value
//! overrides unless it is a zero value; maps merge key by key; lists append — except `command`
//! and `entrypoint` (replaced), `ports` (by published port), secret and config references (by
//! source) and volumes (by target). Top-level networks, volumes, secrets and configs are replaced
//! per key, not merged.

use super::compose::*;
use indexmap::IndexMap;

pub fn merge(mut base: Config, over: Config) -> Config {
    for s in over.services {
        match base.services.iter_mut().find(|b| b.name == s.name) {
            Some(b) => merge_service(b, s),
            None => base.services.push(s),
        }
    }
    base.services.sort_by(|a, b| a.name.cmp(&b.name));
    base.networks.extend(over.networks);
    base.volumes.extend(over.volumes);
    base.secrets.extend(over.secrets);
    base.configs.extend(over.configs);
    base
}

fn text(dst: &mut String, src: String) {
    if !src.is_empty() {
        *dst = src;
    }
}

fn opt<T>(dst: &mut Option<T>, src: Option<T>) {
    if src.is_some() {
        *dst = src;
    }
}

fn flag(dst: &mut bool, src: bool) {
    if src {
        *dst = true;
    }
}

fn map<V>(dst: &mut IndexMap<String, V>, src: IndexMap<String, V>) {
    for (k, v) in src {
        dst.insert(k, v);
    }
}

fn merge_update(dst: &mut Option<UpdateConfig>, src: Option<UpdateConfig>) {
    match (dst.as_mut(), src) {
        (_, None) => {}
        (None, Some(s)) => *dst = Some(s),
        (Some(d), Some(s)) => {
            opt(&mut d.parallelism, s.parallelism);
            opt(&mut d.delay, s.delay);
            text(&mut d.failure_action, s.failure_action);
            opt(&mut d.monitor, s.monitor);
            if s.max_failure_ratio != 0.0 {
                d.max_failure_ratio = s.max_failure_ratio;
            }
            text(&mut d.order, s.order);
        }
    }
}

fn merge_limit(dst: &mut Option<ResourceLimit>, src: Option<ResourceLimit>) {
    match (dst.as_mut(), src) {
        (_, None) => {}
        (None, Some(s)) => *dst = Some(s),
        (Some(d), Some(s)) => {
            if s.nano_cpus != 0 {
                d.nano_cpus = s.nano_cpus;
            }
            if s.memory_bytes != 0 {
                d.memory_bytes = s.memory_bytes;
            }
            if s.pids != 0 {
                d.pids = s.pids;
            }
            d.generic_resources.extend(s.generic_resources);
        }
    }
}

/// Merges `src` into `dst` by `key`, later entries replacing earlier ones, sorted by key.
fn merge_by<T, K: Ord + Clone>(dst: &mut Vec<T>, src: Vec<T>, key: impl Fn(&T) -> K) {
    let mut merged: std::collections::BTreeMap<K, T> = std::collections::BTreeMap::new();
    for item in dst.drain(..).chain(src) {
        merged.insert(key(&item), item);
    }
    *dst = merged.into_values().collect();
}

fn merge_service(d: &mut Service, s: Service) {
    text(&mut d.image, s.image);
    if s.command.as_ref().is_some_and(|c| !c.is_empty()) {
        d.command = s.command;
    }
    if s.entrypoint.as_ref().is_some_and(|c| !c.is_empty()) {
        d.entrypoint = s.entrypoint;
    }
    map(&mut d.environment, s.environment);
    map(&mut d.labels, s.labels);
    // deploy
    text(&mut d.deploy.mode, s.deploy.mode);
    opt(&mut d.deploy.replicas, s.deploy.replicas);
    map(&mut d.deploy.labels, s.deploy.labels);
    merge_update(&mut d.deploy.update_config, s.deploy.update_config);
    merge_update(&mut d.deploy.rollback_config, s.deploy.rollback_config);
    merge_limit(&mut d.deploy.resources.limits, s.deploy.resources.limits);
    merge_limit(&mut d.deploy.resources.reservations, s.deploy.resources.reservations);
    match (d.deploy.restart_policy.as_mut(), s.deploy.restart_policy) {
        (_, None) => {}
        (None, Some(r)) => d.deploy.restart_policy = Some(r),
        (Some(dr), Some(r)) => {
            text(&mut dr.condition, r.condition);
            opt(&mut dr.delay, r.delay);
            opt(&mut dr.max_attempts, r.max_attempts);
            opt(&mut dr.window, r.window);
        }
    }
    d.deploy.placement.constraints.extend(s.deploy.placement.constraints);
    d.deploy.placement.preferences.extend(s.deploy.placement.preferences);
    if s.deploy.placement.max_replicas != 0 {
        d.deploy.placement.max_replicas = s.deploy.placement.max_replicas;
    }
    text(&mut d.deploy.endpoint_mode, s.deploy.endpoint_mode);
    match (d.healthcheck.as_mut(), s.healthcheck) {
        (_, None) => {}
        (None, Some(h)) => d.healthcheck = Some(h),
        (Some(dh), Some(h)) => {
            if !h.test.is_empty() {
                dh.test = h.test;
            }
            opt(&mut dh.interval, h.interval);
            opt(&mut dh.timeout, h.timeout);
            opt(&mut dh.start_period, h.start_period);
            opt(&mut dh.start_interval, h.start_interval);
            opt(&mut dh.retries, h.retries);
            flag(&mut dh.disable, h.disable);
        }
    }
    text(&mut d.hostname, s.hostname);
    d.extra_hosts.extend(s.extra_hosts);
    d.dns.extend(s.dns);
    d.dns_search.extend(s.dns_search);
    text(&mut d.working_dir, s.working_dir);
    text(&mut d.user, s.user);
    opt(&mut d.stop_grace_period, s.stop_grace_period);
    text(&mut d.stop_signal, s.stop_signal);
    flag(&mut d.tty, s.tty);
    flag(&mut d.stdin_open, s.stdin_open);
    flag(&mut d.read_only, s.read_only);
    opt(&mut d.init, s.init);
    text(&mut d.isolation, s.isolation);
    map(&mut d.sysctls, s.sysctls);
    d.cap_add.extend(s.cap_add);
    d.cap_drop.extend(s.cap_drop);
    map(&mut d.ulimits, s.ulimits);
    if s.oom_score_adj != 0 {
        d.oom_score_adj = s.oom_score_adj;
    }
    merge_by(&mut d.volumes, s.volumes, |v| v.target.clone());
    merge_by(&mut d.secrets, s.secrets, |r| r.source.clone());
    merge_by(&mut d.configs, s.configs, |r| r.source.clone());
    match (d.credential_spec.as_mut(), s.credential_spec) {
        (_, None) => {}
        (None, Some(c)) => d.credential_spec = Some(c),
        (Some(dc), Some(c)) => {
            text(&mut dc.config, c.config);
            text(&mut dc.file, c.file);
            text(&mut dc.registry, c.registry);
        }
    }
    match (d.logging.as_mut(), s.logging) {
        (_, None) => {}
        (None, Some(l)) => d.logging = Some(l),
        (Some(dl), Some(l)) => {
            if dl.driver == l.driver || dl.driver.is_empty() || l.driver.is_empty() {
                text(&mut dl.driver, l.driver);
                map(&mut dl.options, l.options);
            } else {
                *dl = l;
            }
        }
    }
    match (d.networks.as_mut(), s.networks) {
        (_, None) => {}
        (None, Some(n)) => d.networks = Some(n),
        (Some(dn), Some(n)) => {
            for (k, v) in n {
                match (dn.get_mut(&k), v) {
                    (Some(Some(existing)), Some(new)) => {
                        existing.aliases = new.aliases;
                        map(&mut existing.driver_opts, new.driver_opts);
                    }
                    (Some(slot @ None), Some(new)) => *slot = Some(new),
                    (Some(_), None) => {}
                    (None, v) => {
                        dn.insert(k, v);
                    }
                }
            }
        }
    }
    merge_by(&mut d.ports, s.ports, |p| p.published);
    text(&mut d.restart, s.restart);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str) -> Service {
        Service { name: name.into(), image: "a:1".into(), ..Service::default() }
    }

    #[test]
    fn later_files_override_but_zero_values_do_not() {
        let mut base = svc("app");
        base.tty = true;
        base.environment.insert("A".into(), Some("1".into()));
        base.cap_add = vec!["NET_ADMIN".into()];
        base.deploy.replicas = Some(2);
        let mut over = svc("app");
        over.image = String::new();
        over.environment.insert("B".into(), Some("2".into()));
        over.environment.insert("A".into(), Some("3".into()));
        over.cap_add = vec!["SYS_TIME".into()];
        let merged = merge(
            Config { services: vec![base, svc("db")], ..Config::default() },
            Config { services: vec![over, svc("cache")], ..Config::default() },
        );
        let names: Vec<_> = merged.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["app", "cache", "db"]);
        let app = &merged.services[0];
        assert_eq!(app.image, "a:1");
        assert!(app.tty);
        assert_eq!(app.environment["A"].as_deref(), Some("3"));
        assert_eq!(app.environment["B"].as_deref(), Some("2"));
        assert_eq!(app.cap_add, ["NET_ADMIN", "SYS_TIME"]);
        assert_eq!(app.deploy.replicas, Some(2));
    }

    #[test]
    fn ports_merge_by_published_port_and_unpublished_collapse() {
        let mut base = svc("web");
        for spec in ["7000", "7001", "8080:80"] {
            base.ports.extend(parse_port_short(spec).unwrap());
        }
        let mut over = svc("web");
        over.ports.extend(parse_port_short("8080:81").unwrap());
        let merged = merge(
            Config { services: vec![base], ..Config::default() },
            Config { services: vec![over], ..Config::default() },
        );
        let ports: Vec<_> = merged.services[0].ports.iter().map(|p| (p.published, p.target)).collect();
        assert_eq!(ports, [(0, 7001), (8080, 81)]);
    }

    #[test]
    fn references_merge_by_source_and_top_level_objects_are_replaced() {
        let mut base = svc("app");
        base.secrets = vec![
            FileRef { source: "b".into(), ..FileRef::default() },
            FileRef { source: "a".into(), target: "x".into(), ..FileRef::default() },
        ];
        let mut over = svc("app");
        over.secrets = vec![FileRef { source: "a".into(), target: "y".into(), ..FileRef::default() }];
        let mut nets = IndexMap::new();
        nets.insert(
            "n1".to_string(),
            NetworkDef { driver: "overlay".into(), attachable: true, ..NetworkDef::default() },
        );
        let mut over_nets = IndexMap::new();
        over_nets.insert(
            "n1".to_string(),
            NetworkDef { labels: [("l".to_string(), "v".to_string())].into_iter().collect(), ..NetworkDef::default() },
        );
        let merged = merge(
            Config { services: vec![base], networks: nets, ..Config::default() },
            Config { services: vec![over], networks: over_nets, ..Config::default() },
        );
        let refs: Vec<_> = merged.services[0].secrets.iter().map(|r| (r.source.as_str(), r.target.as_str())).collect();
        assert_eq!(refs, [("a", "y"), ("b", "")]);
        assert_eq!(merged.networks["n1"].driver, "", "top-level definitions are replaced, not merged");
        assert!(!merged.networks["n1"].attachable);
    }
}
