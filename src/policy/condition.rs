//! Compiled rule conditions and header/query tests.

use crate::crawlers::{Anomalies, ClientClass, Verification};
use regex::Regex;

/// A compiled test on one header or query parameter.
#[derive(Debug, Clone)]
pub struct FieldTest {
    /// Lower-cased for headers; as written for query parameters.
    pub name: String,
    pub test: ValueTest,
}

#[derive(Debug, Clone)]
pub enum ValueTest {
    Equals(String),
    Regex(Regex),
    Present,
    Absent,
}

impl FieldTest {
    pub fn holds(&self, value: Option<&str>) -> bool {
        match (&self.test, value) {
            (ValueTest::Equals(expected), Some(v)) => v == expected,
            (ValueTest::Regex(re), Some(v)) => re.is_match(v),
            (ValueTest::Present, v) => v.is_some(),
            (ValueTest::Absent, v) => v.is_none(),
            (_, None) => false,
        }
    }
}

/// A compiled condition. Regexes shared across rules (user agents, paths)
/// live in `RegexSet`s on the policy and are referred to by index, so each
/// set is matched once per request however many rules use it.
#[derive(Debug, Clone)]
pub enum Cond {
    /// Client address in any of these lists (indexes into the policy's lists).
    IpIn(Vec<usize>),
    /// User agent matches pattern `n` of the policy's user-agent set.
    UserAgent(usize),
    Class(Vec<ClientClass>),
    Crawler(Vec<Verification>),
    /// Any of these header-consistency anomalies.
    Anomalies(Anomalies),
    Header(FieldTest),
    Query(FieldTest),
    Methods(Vec<String>),
    /// Path matches any of these patterns of the policy's rule-path set.
    Path(Vec<usize>),
    /// Client address in the policy's resolved set `n`: what a geo test
    /// (country, continent, AS number, AS organisation or hosting) stands
    /// for (`policy::origin`, `policy::resolved`).
    InResolved(usize),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

/// Everything a condition can look at, computed at most once per request.
pub trait Facts {
    fn ip_in(&self, list: usize) -> bool;
    fn user_agent_matches(&self, pattern: usize) -> bool;
    fn class(&self) -> ClientClass;
    fn verification(&self) -> Option<Verification>;
    fn header_anomalies(&self) -> Anomalies;
    fn header(&self, name: &str) -> Option<&str>;
    fn query(&self, name: &str) -> Option<&str>;
    fn method(&self) -> &str;
    fn path_matches(&self, pattern: usize) -> bool;
    fn in_resolved(&self, set: usize) -> bool;
}

impl Cond {
    pub fn holds<F: Facts>(&self, facts: &F) -> bool {
        match self {
            Cond::IpIn(lists) => lists.iter().any(|&l| facts.ip_in(l)),
            Cond::UserAgent(p) => facts.user_agent_matches(*p),
            Cond::Class(classes) => classes.contains(&facts.class()),
            Cond::Crawler(states) => facts.verification().is_some_and(|v| states.contains(&v)),
            Cond::Anomalies(wanted) => facts.header_anomalies().intersects(*wanted),
            Cond::Header(test) => test.holds(facts.header(&test.name)),
            Cond::Query(test) => test.holds(facts.query(&test.name)),
            // Upper-cased at compile time; compared like route methods.
            Cond::Methods(methods) => methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(facts.method())),
            Cond::Path(patterns) => patterns.iter().any(|&p| facts.path_matches(p)),
            Cond::InResolved(set) => facts.in_resolved(*set),
            Cond::All(conds) => conds.iter().all(|c| c.holds(facts)),
            Cond::Any(conds) => conds.iter().any(|c| c.holds(facts)),
            Cond::Not(cond) => !cond.holds(facts),
        }
    }
}
