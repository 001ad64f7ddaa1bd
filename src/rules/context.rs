//! What an alert shows of the requests behind it, for every rule: the
//! sample request, the context fields (Panther's `k8s_alert_context`), and
//! the conditions of the investigation query, from a window's tallies.

use super::{catalog, first_and_last, multiple_403};
use crate::audit::{opt, AuditEvent};
use crate::bounded::cap;
use crate::vocab::{AlertContext, Condition, Sample, SampleStatus};
use crate::window::{TallyMap as Tallies, WindowState, UNIQUE_FIELD};

impl Sample {
    /// Copies the sample fields out of an event, each capped (they are
    /// attacker-controlled and end up in state and alerts).
    pub fn of(ev: &AuditEvent<'_>) -> Self {
        let own = |s: Option<&str>| s.map(cap);
        Self {
            audit_id: own(opt(&ev.audit_id)),
            request_uri: own(opt(&ev.request_uri)),
            verb: own(opt(&ev.verb)),
            user_agent: own(opt(&ev.user_agent)),
            username: own(ev.username()),
            response_status: SampleStatus {
                code: ev.status_code(),
                reason: own(ev.status_reason()),
            },
            stage_timestamp: own(opt(&ev.stage_timestamp)),
            namespace: own(ev.namespace()),
            resource: own(ev.resource()),
            name: own(ev.name()),
            source_ips: first_and_last(ev.source_ips.list(), SAMPLE_ADDRESSES)
                .0
                .into_iter()
                .map(cap)
                .collect(),
        }
    }
}

/// Distinct first entries of `sourceIPs` a sample keeps (plus the last).
pub const SAMPLE_ADDRESSES: usize = 3;

/// Values a default query condition lists at most: a window with more
/// verbs (or resources, or response codes) than this is not narrowed by
/// them.
pub const MAX_LISTED_VALUES: usize = 5;

/// The tallies a window may hold each context field in: the catalog's name
/// ([`catalog::CONTEXT_FIELDS`]) first, then the name Multiple403 keeps
/// from Panther's summary for the same field.
const USERNAME_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[0], multiple_403::SUMMARY_FIELDS[0]];
const SOURCE_IP_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[1], multiple_403::SUMMARY_FIELDS[1]];
const USER_AGENT_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[2]];
const NAMESPACE_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[3]];
const VERB_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[4]];
const RESOURCE_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[5]];
const URI_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[6]];
const CODE_TALLIES: &[&str] = &[catalog::CONTEXT_FIELDS[7]];

impl AlertContext {
    /// The context of a window: each field's distinct values as the rule
    /// tallied them, else the value of `sample` (the alert's request).
    pub fn of(state: &WindowState, sample: &Sample) -> Self {
        Self::from_parts(Some(&state.tallies), sample)
    }

    /// The context one request gives (an alert stored before alerts had
    /// one).
    pub fn of_sample(sample: &Sample) -> Self {
        Self::from_parts(None, sample)
    }

    fn from_parts(tallies: Option<&Tallies>, sample: &Sample) -> Self {
        let tallied = |names: &[&str]| -> Option<Vec<String>> {
            let t = tallies?;
            names
                .iter()
                .find_map(|n| t.get(*n))
                .map(|m| m.keys().cloned().collect())
        };
        let or = |names: &[&str], value: &Option<String>| {
            tallied(names).unwrap_or_else(|| value.iter().cloned().collect())
        };
        Self {
            username: or(USERNAME_TALLIES, &sample.username),
            source_ips: tallied(SOURCE_IP_TALLIES).unwrap_or_else(|| sample.source_ips.clone()),
            user_agent: or(USER_AGENT_TALLIES, &sample.user_agent),
            namespace: or(NAMESPACE_TALLIES, &sample.namespace),
            verb: or(VERB_TALLIES, &sample.verb),
            resource: or(RESOURCE_TALLIES, &sample.resource),
            request_uri: or(URI_TALLIES, &sample.request_uri),
            response_status: match tallied(CODE_TALLIES) {
                Some(codes) => codes.iter().filter_map(|c| c.parse().ok()).collect(),
                None => sample.response_status.code.into_iter().collect(),
            },
        }
    }
}

/// Every distinct value a context field took in the window, when that is
/// known: a tally that counted the field once per match, with nothing left
/// out (its counts add up to the window's), or the sample's value when the
/// window holds that one request. `None` otherwise: a condition on part of
/// the values would hide requests.
fn all_values(state: &WindowState, names: &[&str], sample: Option<String>) -> Option<Vec<String>> {
    match names.iter().find_map(|n| state.tallies.get(*n)) {
        Some(m) => {
            let counted: u64 = m.values().sum();
            // A distinct-value rule counts a repeated value once in `count`
            // but tallies it every time, so only an overflow-free window of
            // such a rule can be trusted.
            let whole = counted == state.count
                && (state.overflow == 0 || !state.tallies.contains_key(UNIQUE_FIELD));
            whole.then(|| m.keys().cloned().collect())
        }
        None => (state.count == 1).then(|| sample.into_iter().collect()),
    }
}

/// The default query conditions of a window ([`crate::rules::Rule::investigate`]): the
/// source address the alert is about, when it is an address; the username,
/// when the window saw only one; the verbs, resources and response codes,
/// when it saw at most [`MAX_LISTED_VALUES`] of each.
pub fn window_conditions(state: &WindowState) -> Vec<Condition> {
    let mut out = Vec::new();
    if crate::net::parse_ip(&state.source_ip).is_some() {
        out.push(Condition::Mentions(state.source_ip.clone()));
    }
    let s = &state.sample;
    if let Some(users) = all_values(state, USERNAME_TALLIES, s.username.clone()) {
        if users.len() == 1 {
            out.push(Condition::OneOf("user.username", users));
        }
    }
    let listed = |v: &Vec<String>| (1..=MAX_LISTED_VALUES).contains(&v.len());
    for (names, field, value) in [
        (VERB_TALLIES, "verb", &s.verb),
        (RESOURCE_TALLIES, "objectRef.resource", &s.resource),
    ] {
        if let Some(values) = all_values(state, names, value.clone()).filter(listed) {
            out.push(Condition::OneOf(field, values));
        }
    }
    let code = s.response_status.code.map(|c| c.to_string());
    if let Some(codes) = all_values(state, CODE_TALLIES, code).filter(listed) {
        let numbers: Vec<i64> = codes.iter().filter_map(|c| c.parse().ok()).collect();
        if numbers.len() == codes.len() {
            out.push(Condition::OneOfNumbers("responseStatus.code", numbers));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::RuleId;

    /// A window of `count` matches with these tallies and first request.
    fn window(count: u64, tallies: &[(&str, &str, u64)], sample: Sample) -> WindowState {
        let mut st = WindowState::empty(RuleId::new("T"), "d", 0);
        st.count = count;
        st.source_ip = "203.0.113.9".into();
        st.sample = sample.into();
        for (field, value, n) in tallies {
            st.tallies
                .entry((*field).to_owned())
                .or_default()
                .insert((*value).to_owned(), *n);
        }
        st
    }

    fn sample() -> Sample {
        Sample {
            verb: Some("get".into()),
            username: Some("alice".into()),
            namespace: Some("prod".into()),
            source_ips: vec!["203.0.113.9".into()],
            response_status: SampleStatus {
                code: Some(403),
                reason: None,
            },
            ..Sample::default()
        }
    }

    #[test]
    fn the_context_lists_tallied_values_else_the_sample() {
        let st = window(
            3,
            &[
                ("verb", "get", 2),
                ("verb", "list", 1),
                ("user:username", "bob", 3),
                ("responseStatus.code", "403", 3),
            ],
            sample(),
        );
        let c = AlertContext::of(&st, &st.sample);
        assert_eq!(c.verb, ["get", "list"]);
        // Multiple403's name for the username
        assert_eq!(c.username, ["bob"]);
        assert_eq!(c.response_status, [403]);
        // not tallied: the sample's
        assert_eq!(c.namespace, ["prod"]);
        assert_eq!(c.source_ips, ["203.0.113.9"]);
        assert!(c.user_agent.is_empty());
    }

    #[test]
    fn default_conditions_narrow_only_by_what_the_whole_window_holds() {
        // GIVEN a window whose tallies count every match
        let st = window(
            3,
            &[
                ("verb", "get", 2),
                ("verb", "list", 1),
                ("username", "bob", 3),
                ("responseStatus.code", "403", 3),
                // a resource only some requests had
                ("resource", "pods", 2),
            ],
            sample(),
        );
        assert_eq!(
            window_conditions(&st),
            [
                Condition::Mentions("203.0.113.9".into()),
                Condition::OneOf("user.username", vec!["bob".into()]),
                Condition::OneOf("verb", vec!["get".into(), "list".into()]),
                Condition::OneOfNumbers("responseStatus.code", vec![403]),
            ]
        );
        // GIVEN more verbs than are listed, and two users: not narrowed by them
        let verbs: Vec<(String, u64)> = (0..6).map(|i| (format!("v{i}"), 1)).collect();
        let mut st = window(6, &[("username", "a", 3), ("username", "b", 3)], sample());
        for (v, n) in &verbs {
            st.tallies
                .entry("verb".into())
                .or_default()
                .insert(v.clone(), *n);
        }
        st.source_ip = "<NO_SOURCE_IP>".into();
        assert_eq!(window_conditions(&st), []);
        // GIVEN nothing tallied: the sample speaks for a one-request window only
        let one = window(1, &[], sample());
        assert_eq!(
            window_conditions(&one)[1..],
            [
                Condition::OneOf("user.username", vec!["alice".into()]),
                Condition::OneOf("verb", vec!["get".into()]),
                Condition::OneOfNumbers("responseStatus.code", vec![403]),
            ]
        );
        assert_eq!(window_conditions(&window(2, &[], sample())).len(), 1);
    }
}
