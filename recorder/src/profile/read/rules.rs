//! The profile object itself: top-level keys, rules, argument conditions and
//! moby's includes/excludes, each value checked where it stands.

use std::collections::HashSet;

use super::{
    super::{Action, ArchMapEntry, ArgCondition, Filter, Op, Profile, SyscallRule, catalog},
    ARG_KEYS, FILTER_KEYS, Key, MAX_ARGS, MAX_PROBLEMS, Node, Pos, RULE_KEYS, Reader, Value,
};

impl Reader {
    pub(super) fn profile(&mut self, node: &Node, entries: &[(Key, Node)], known: &[&str]) -> Option<Profile> {
        let mut ok = true;
        let mut profile = Profile::empty(Action::Errno);
        let mut default_errno_named: Option<(u32, Pos)> = None;
        let mut saw_default = false;
        for (key, value) in entries {
            if !known.contains(&key.name.as_str()) {
                self.unknown_key(key, known);
                continue;
            }
            match key.name.as_str() {
                "defaultAction" => {
                    saw_default = true;
                    match self.action(value, "defaultAction") {
                        Some(a) => profile.default_action = a,
                        None => ok = false,
                    }
                }
                "defaultErrnoRet" => profile.default_errno_ret = self.errno(value, "defaultErrnoRet"),
                "defaultErrno" => {
                    self.common = true;
                    if let Some(n) = self.errno(value, "defaultErrno") {
                        default_errno_named = Some((n, value.pos));
                    }
                }
                "architectures" => {
                    for (name, pos) in self.strings(value, "architectures") {
                        if self.arch(&name, pos) && !profile.architectures.contains(&name) {
                            profile.architectures.push(name);
                        }
                    }
                }
                "archMap" => {
                    self.moby = true;
                    profile.arch_map = self.arch_map(value);
                }
                "flags" => {
                    for (flag, pos) in self.strings(value, "flags") {
                        if catalog::FLAGS.contains(&flag.as_str()) {
                            profile.flags.push(flag);
                        } else {
                            let hint = catalog::suggest(&flag, catalog::FLAGS)
                                .map(|s| format!("did you mean {s}?"))
                                .unwrap_or_else(|| format!("known flags: {}", catalog::FLAGS.join(", ")));
                            self.err(pos, format!("unknown flag {flag:?}; {hint}"));
                        }
                    }
                }
                "listenerPath" => profile.listener_path = self.string(value, "listenerPath"),
                "listenerMetadata" => profile.listener_metadata = self.string(value, "listenerMetadata"),
                "syscalls" => {
                    if let Some(items) = self.list(value, "syscalls") {
                        for item in items {
                            if let Some(rule) = self.rule(item) {
                                profile.syscalls.push(rule);
                            }
                        }
                    }
                }
                "seccomp" => {
                    self.err(key.pos, "this looks like a runtime config with a nested seccomp object; pass that object's contents as the profile");
                }
                // SPO-only keys with no meaning for enforcement.
                _ => {}
            }
        }
        if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
            self.err(node.pos, "use either architectures or archMap, not both (moby refuses both)");
        }
        if !saw_default {
            self.err(
                node.pos,
                "missing defaultAction; a profile needs one, e.g. \"defaultAction\": \"SCMP_ACT_ERRNO\"",
            );
            ok = false;
        }
        if let Some((n, pos)) = default_errno_named {
            match profile.default_errno_ret {
                Some(m) if m != n => {
                    self.err(pos, format!("defaultErrno ({n}) disagrees with defaultErrnoRet ({m}); keep one"))
                }
                _ => profile.default_errno_ret = Some(n),
            }
        }
        if profile.default_errno_ret.is_some() && saw_default && !profile.default_action.takes_errno_ret() {
            let pos = entries.iter().find(|(k, _)| k.name.starts_with("defaultErrno")).map_or(node.pos, |(k, _)| k.pos);
            self.err(
                pos,
                format!(
                    "defaultErrnoRet has no effect with {}; remove it or use SCMP_ACT_ERRNO",
                    profile.default_action
                ),
            );
        }
        if profile.default_action == Action::Notify {
            self.err(node.pos, "SCMP_ACT_NOTIFY cannot be the default action (runtimes refuse it); use SCMP_ACT_ERRNO");
        }
        let notifies = profile.syscalls.iter().any(|r| r.action == Action::Notify);
        if notifies && profile.listener_path.as_deref().unwrap_or("").is_empty() {
            self.err(node.pos, "SCMP_ACT_NOTIFY rules need a listenerPath naming the seccomp agent's socket");
        }
        ok.then_some(profile)
    }

    fn arch_map(&mut self, node: &Node) -> Vec<ArchMapEntry> {
        let Some(items) = self.list(node, "archMap") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Value::Map(entries) = &item.value else {
                self.err(item.pos, format!("archMap entries must be objects, found {}", item.kind()));
                continue;
            };
            let mut architecture = None;
            let mut subs = Vec::new();
            for (key, value) in entries {
                match key.name.as_str() {
                    "architecture" => {
                        architecture = self.string(value, "architecture").filter(|a| self.arch(a, value.pos));
                    }
                    "subArchitectures" => {
                        for (name, pos) in self.strings(value, "subArchitectures") {
                            if self.arch(&name, pos) {
                                subs.push(name);
                            }
                        }
                    }
                    _ => self.unknown_key(key, &["architecture", "subArchitectures"]),
                }
            }
            match architecture {
                Some(architecture) => out.push(ArchMapEntry { architecture, sub_architectures: subs }),
                None if item.get("architecture").is_none() => self.err(item.pos, "archMap entry has no architecture"),
                None => {}
            }
        }
        out
    }

    fn rule(&mut self, node: &Node) -> Option<SyscallRule> {
        let Value::Map(entries) = &node.value else {
            self.err(node.pos, format!("each syscalls entry must be an object, found {}", node.kind()));
            return None;
        };
        let mut ok = true;
        let mut rule = SyscallRule::new(Vec::<String>::new(), Action::Allow);
        let mut seen = HashSet::new();
        let mut action_pos = None;
        let mut names_node = None;
        let mut errno_named: Option<(u32, Pos)> = None;
        let mut errno_key = None;
        for (key, value) in entries {
            match key.name.as_str() {
                "names" => {
                    names_node = Some(value);
                    for (name, pos) in self.strings(value, "names") {
                        self.syscall_name(&name, pos, &mut seen);
                        rule.names.push(name);
                    }
                }
                "name" => {
                    self.moby = true;
                    if let Some(name) = self.string(value, "name") {
                        self.syscall_name(&name, value.pos, &mut seen);
                        rule.names.insert(0, name);
                    }
                }
                "action" => {
                    action_pos = Some(value.pos);
                    match self.action(value, "action") {
                        Some(a) => rule.action = a,
                        None => ok = false,
                    }
                }
                "errnoRet" => {
                    errno_key = Some(key.pos);
                    rule.errno_ret = self.errno(value, "errnoRet");
                }
                "errno" => {
                    self.common = true;
                    errno_key.get_or_insert(key.pos);
                    if let Some(n) = self.errno(value, "errno") {
                        errno_named = Some((n, value.pos));
                    }
                }
                "args" => {
                    if let Some(items) = self.list(value, "args") {
                        if items.len() > MAX_ARGS {
                            self.err(
                                value.pos,
                                format!(
                                    "{} argument conditions; a syscall has at most {MAX_ARGS} arguments",
                                    items.len()
                                ),
                            );
                            ok = false;
                        }
                        for item in items {
                            match self.arg(item) {
                                Some(c) => rule.args.push(c),
                                None => ok = false,
                            }
                        }
                    }
                }
                "comment" => {
                    if let Some(c) = self.string(value, "comment")
                        && !c.is_empty()
                    {
                        self.moby = true;
                        rule.comment = Some(c);
                    }
                }
                "includes" => rule.includes = self.filter(value, "includes"),
                "excludes" => rule.excludes = self.filter(value, "excludes"),
                _ => self.unknown_key(key, &RULE_KEYS),
            }
        }
        if action_pos.is_none() {
            self.err(node.pos, "rule has no action; add e.g. \"action\": \"SCMP_ACT_ALLOW\"");
            ok = false;
        }
        if names_node.is_some() && entries.iter().any(|(k, _)| k.name == "name") {
            self.err(node.pos, "rule has both name and names; moby refuses that, keep names");
            ok = false;
        }
        if rule.names.is_empty() {
            let pos = names_node.map_or(node.pos, |n| n.pos);
            self.err(pos, "names is empty; list at least one syscall or delete this rule");
            ok = false;
        }
        if let Some((n, pos)) = errno_named {
            match rule.errno_ret {
                Some(m) if m != n => self.err(pos, format!("errno ({n}) disagrees with errnoRet ({m}); keep one")),
                _ => rule.errno_ret = Some(n),
            }
        }
        if rule.errno_ret.is_some() && action_pos.is_some() && !rule.action.takes_errno_ret() {
            self.err(
                errno_key.unwrap_or(node.pos),
                format!("errnoRet has no effect with {}; remove it, or use SCMP_ACT_ERRNO", rule.action),
            );
            ok = false;
        }
        if !rule.includes.is_empty() || !rule.excludes.is_empty() {
            self.moby = true;
        }
        ok.then_some(rule)
    }

    fn syscall_name(&mut self, name: &str, pos: Pos, seen: &mut HashSet<String>) {
        if self.problems.len() >= MAX_PROBLEMS {
            // Past the cap nothing is listed; skip the costly suggestion but
            // keep the count honest.
            if !seen.insert(name.to_owned()) || !catalog::is_known_syscall(name) {
                self.omitted.1 += 1;
            }
            return;
        }
        if !seen.insert(name.to_owned()) {
            self.warn(pos, format!("syscall {name:?} is listed twice in this rule"));
        } else if !catalog::is_known_syscall(name) {
            let hint = match catalog::suggest(name, catalog::known_syscalls().iter().copied()) {
                Some(s) => format!("; did you mean {s:?}?"),
                None => "; runtimes skip names their libseccomp does not know".to_owned(),
            };
            self.warn(pos, format!("unknown syscall {name:?}{hint}"));
        }
    }

    fn arg(&mut self, node: &Node) -> Option<ArgCondition> {
        let Value::Map(entries) = &node.value else {
            self.err(node.pos, format!("each args entry must be an object, found {}", node.kind()));
            return None;
        };
        let (mut index, mut value, mut value_two, mut op) = (None, Some(0), Some(0), None);
        for (key, v) in entries {
            match key.name.as_str() {
                "index" => index = self.uint(v, "index", (MAX_ARGS - 1) as u64),
                "value" => value = self.uint(v, "value", u64::MAX),
                "valueTwo" => value_two = self.uint(v, "valueTwo", u64::MAX),
                "op" => {
                    if let Some(name) = self.string(v, "op") {
                        op = Op::from_name(&name);
                        if op.is_none() {
                            let hint = catalog::suggest(&name, Op::ALL.iter().map(|o| o.as_str()))
                                .map(|s| format!("did you mean {s}?"))
                                .unwrap_or_else(|| "use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_MASKED_EQ, ...".to_owned());
                            self.err(v.pos, format!("unknown op {name:?}; {hint}"));
                        }
                    }
                }
                _ => self.unknown_key(key, &ARG_KEYS),
            }
        }
        if entries.iter().all(|(k, _)| k.name != "index") {
            self.err(node.pos, "argument condition has no index (0 to 5)");
        }
        if entries.iter().all(|(k, _)| k.name != "op") {
            self.err(node.pos, "argument condition has no op; use e.g. SCMP_CMP_EQ");
        }
        let index = u32::try_from(index?).ok()?;
        Some(ArgCondition { index, value: value?, value_two: value_two?, op: op? })
    }

    fn filter(&mut self, node: &Node, what: &str) -> Filter {
        let mut filter = Filter::default();
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                self.err(node.pos, format!("{what} must be an object, found {}", node.kind()));
            }
            return filter;
        };
        for (key, value) in entries {
            match key.name.as_str() {
                "caps" => {
                    for (cap, pos) in self.strings(value, "caps") {
                        if !catalog::CAPS.contains(&cap.as_str()) {
                            let hint = catalog::suggest(&cap, catalog::CAPS)
                                .map(|s| format!("; did you mean {s}?"))
                                .unwrap_or_default();
                            self.warn(pos, format!("unknown capability {cap:?}{hint}"));
                        }
                        filter.caps.push(cap);
                    }
                }
                "arches" => {
                    for (arch, pos) in self.strings(value, "arches") {
                        if !catalog::GOARCHES.contains(&arch.as_str()) {
                            self.warn(pos, format!("unknown architecture {arch:?}; moby compares these with Go's GOARCH (amd64, arm64, ...)"));
                        }
                        filter.arches.push(arch);
                    }
                }
                "minKernel" => {
                    if let Some(v) = self.string(value, "minKernel") {
                        if super::super::evaluate::parse_kernel(&v).is_none() {
                            self.err(value.pos, format!("minKernel {v:?} is not a kernel version like \"4.8\""));
                        }
                        filter.min_kernel = Some(v);
                    }
                }
                _ => self.unknown_key(key, &FILTER_KEYS),
            }
        }
        filter
    }
}
