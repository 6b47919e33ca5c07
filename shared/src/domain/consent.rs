//! Consent per contact and category (DESIGN section 13): who said yes or no to which
//! kind of message, when, and what proves it.

use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// A kind of message consent is given or withdrawn for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Promotions, offers, newsletters.
    Marketing,
    /// Transactional messages (orders, appointments, accounts).
    Utility,
}

impl Category {
    /// Every category, in stored order.
    pub const ALL: [Category; 2] = [Category::Marketing, Category::Utility];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Marketing => "marketing",
            Category::Utility => "utility",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == value)
    }
}

/// Whether messages of a category may be sent.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// They may.
    OptedIn,
    /// They may not.
    OptedOut,
}

impl State {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            State::OptedIn => "opted_in",
            State::OptedOut => "opted_out",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<State> {
        match value {
            "opted_in" => Some(State::OptedIn),
            "opted_out" => Some(State::OptedOut),
            _ => None,
        }
    }
}

/// What a consent change came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConsentSource {
    /// An import's WhatsApp-opted column (or a campaign's recipients).
    Import,
    /// Meta's `user_preferences` webhook: the user's own choice in WhatsApp.
    UserPreferences,
    /// An SMS keyword (STOP, START, ...) the user sent.
    Keyword,
    /// A failed status with error 131050: the user stopped marketing messages.
    Status131050,
    /// An API call on the business's behalf.
    Api,
}

impl ConsentSource {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Import => "import",
            ConsentSource::UserPreferences => "user_preferences",
            ConsentSource::Keyword => "keyword",
            ConsentSource::Status131050 => "status_131050",
            ConsentSource::Api => "api",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<ConsentSource> {
        [
            ConsentSource::Import,
            ConsentSource::UserPreferences,
            ConsentSource::Keyword,
            ConsentSource::Status131050,
            ConsentSource::Api,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Whether the person themselves gave this signal (only they undo their own
    /// opt-out).
    pub fn is_the_users_own(self) -> bool {
        matches!(
            self,
            ConsentSource::UserPreferences | ConsentSource::Keyword | ConsentSource::Status131050
        )
    }
}

/// The stored consent of one category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentEntry {
    /// Opted in or out.
    pub state: State,
    /// RFC 3339 UTC time of the signal (not of the write): comparable as text.
    pub at: String,
    /// What it came from.
    pub source: ConsentSource,
    /// The business number (`phone_number_id`) a WhatsApp signal applies to.
    pub scope: Option<String>,
    /// What proves it: `import_id` and row, a `wamid`, the keyword.
    pub evidence: String,
}

/// A contact's consent, by category.
pub type Consent = BTreeMap<Category, ConsentEntry>;

/// One thing someone said about consent, before it meets what is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    /// The category it is about.
    pub category: Category,
    /// What it says.
    pub state: State,
    /// RFC 3339 time it was said. Stored normalised ([`consent_time`]); compared as
    /// times, so any offset or precision works.
    pub at: String,
    /// What it came from.
    pub source: ConsentSource,
    /// The business number (`phone_number_id`) a WhatsApp signal came through; `None`
    /// for signals that are not about one number (imports, SMS keywords).
    pub scope: Option<String>,
    /// What proves it: `import_id#row N`, a `wamid`, the keyword as written.
    pub evidence: String,
}

impl Signal {
    /// The entry this signal stores, with `scope`.
    fn entry(&self, scope: Option<String>) -> ConsentEntry {
        ConsentEntry {
            state: self.state,
            at: consent_time(&self.at).unwrap_or_else(|| self.at.clone()),
            source: self.source,
            scope,
            evidence: self.evidence.clone(),
        }
    }
}

/// What [`apply`] did with a signal.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The stored entry changed (its state, or for the user's own word its time, source
    /// or scope): the contact must be written.
    Changed,
    /// Already so: nothing to write.
    Unchanged,
    /// Older than the stored entry (or, for an opt-in, no newer than a stored
    /// opt-out): nothing to write.
    Stale,
    /// An opt-in that is not the user's own met the user's own opt-out: the contact
    /// stays opted out.
    KeptOptedOut,
    /// The user's own opt-in on another business number than their opt-out's: the
    /// contact stays opted out.
    OtherScope,
}

/// Applies `signal` to `consent` (DESIGN section 13) and says what it did. The rules,
/// in the order they are checked:
///
/// 1. **No entry yet**: the signal is stored.
/// 2. **The user's own opt-out stands against everyone but the user.** An opt-in that
///    is not the user's own (`import`, `api`) never undoes a `user_preferences` stop,
///    a STOP keyword or a `131050` status, whatever its time ([`Applied::KeptOptedOut`]).
///    The other way round, the user's own opt-out replaces an entry the user did not
///    give *even when that entry is newer*: an import or API opt-in written after the
///    user's STOP was sent but before it arrived (webhooks are retried for days) could
///    never have undone it, so the contact ends as it would had the STOP come first.
/// 3. **Out of order**: otherwise a signal older than the stored `at` changes nothing
///    ([`Applied::Stale`]). Equal times are decided for the opt-out: an opt-out at the
///    stored opt-in's time replaces it, an opt-in at the stored opt-out's time is
///    stale; the same state at the same time is [`Applied::Unchanged`] (a replay).
/// 4. **Scope** (the `phone_number_id` of WhatsApp signals; `None` is every number):
///    the user's own opt-in undoes the user's own opt-out only when it covers the
///    opt-out's scope: it has no scope, or the same one. A resume on number B leaves a
///    stop on number A standing ([`Applied::OtherScope`]).
///    When the user stops on B while already stopped on A, the entry's scope is
///    dropped: the stop is then on **every number**, and no resume on one number
///    undoes it, because a resume on A must never lift B's stop and one entry cannot
///    hold two scopes. When in doubt, the contact stays opted out. For the same reason
///    a stop on another number than a newer stored opt-in's is applied even though it
///    is older: that opt-in did not cover it.
/// 5. **Same state**: the user's own signal refreshes the entry to its newer time,
///    source and evidence ([`Applied::Changed`]), so that a late signal is judged
///    against the user's latest word; a signal that is not the user's own leaves the
///    entry as it is ([`Applied::Unchanged`]), so that importing the same file again
///    writes nothing.
pub fn apply(consent: &mut Consent, signal: &Signal) -> Applied {
    let stored = match consent.entry(signal.category) {
        Entry::Vacant(vacant) => {
            vacant.insert(signal.entry(signal.scope.clone()));
            return Applied::Changed;
        }
        Entry::Occupied(occupied) => occupied.into_mut(),
    };
    match signal.state {
        State::OptedOut => opt_out(stored, signal),
        State::OptedIn => opt_in(stored, signal),
    }
}

fn opt_out(stored: &mut ConsentEntry, signal: &Signal) -> Applied {
    let when = compare_times(&signal.at, &stored.at);
    let users = signal.source.is_the_users_own();
    match (users, stored.source.is_the_users_own(), stored.state) {
        // The user's own stop outranks whatever the business recorded.
        (true, false, _) => replace(stored, signal, signal.scope.clone()),
        // Stopped again: the stop covers both numbers (or every number).
        (true, true, State::OptedOut) => {
            let scope = union(&stored.scope, &signal.scope);
            match when {
                Ordering::Greater => replace(stored, signal, scope),
                _ if scope != stored.scope => {
                    stored.scope = scope;
                    Applied::Changed
                }
                Ordering::Equal => Applied::Unchanged,
                Ordering::Less => Applied::Stale,
            }
        }
        // The user resumed: a later stop wins, and so does an earlier one the resume
        // did not cover.
        (true, true, State::OptedIn) => {
            if when != Ordering::Less || !covers(&stored.scope, &signal.scope) {
                replace(stored, signal, signal.scope.clone())
            } else {
                Applied::Stale
            }
        }
        (false, _, State::OptedOut) if when == Ordering::Less => Applied::Stale,
        (false, _, State::OptedOut) => Applied::Unchanged,
        (false, _, State::OptedIn) if when == Ordering::Less => Applied::Stale,
        (false, _, State::OptedIn) => replace(stored, signal, signal.scope.clone()),
    }
}

fn opt_in(stored: &mut ConsentEntry, signal: &Signal) -> Applied {
    let users = signal.source.is_the_users_own();
    let stored_users = stored.source.is_the_users_own();
    if stored.state == State::OptedOut && stored_users && !users {
        return Applied::KeptOptedOut;
    }
    match compare_times(&signal.at, &stored.at) {
        Ordering::Equal if stored.state == State::OptedIn => return Applied::Unchanged,
        Ordering::Less | Ordering::Equal => return Applied::Stale,
        Ordering::Greater => {}
    }
    match stored.state {
        State::OptedOut if stored_users && !covers(&signal.scope, &stored.scope) => {
            Applied::OtherScope
        }
        State::OptedOut => replace(stored, signal, signal.scope.clone()),
        State::OptedIn if users => replace(stored, signal, signal.scope.clone()),
        State::OptedIn => Applied::Unchanged,
    }
}

/// Stores `signal` with `scope` in place of `stored`.
fn replace(stored: &mut ConsentEntry, signal: &Signal, scope: Option<String>) -> Applied {
    let next = signal.entry(scope);
    if *stored == next {
        return Applied::Unchanged;
    }
    *stored = next;
    Applied::Changed
}

/// Whether an opt-in scoped `resume` undoes an opt-out scoped `stop`: `None` is every
/// number.
fn covers(resume: &Option<String>, stop: &Option<String>) -> bool {
    resume.is_none() || resume == stop
}

/// The scope of two stops together: one number when both are on it, else every number.
fn union(a: &Option<String>, b: &Option<String>) -> Option<String> {
    if a == b {
        a.clone()
    } else {
        None
    }
}

/// `a` against `b` as times; as text when either is not RFC 3339 (then the stored form
/// is at least consistent with itself).
fn compare_times(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    match (
        chrono::DateTime::parse_from_rfc3339(a),
        chrono::DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

/// An RFC 3339 time as consent stores it: UTC with milliseconds
/// (`2026-11-21T10:00:00.000Z`), the form every writer of this crate uses, so stored
/// times also compare correctly as text. `None` when `text` is not RFC 3339.
pub fn consent_time(text: &str) -> Option<String> {
    let time = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some(
        time.with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// A Unix time in seconds (WhatsApp's `timestamp`) as consent stores it; `None` when
/// out of range.
pub fn consent_time_from_unix(seconds: i64) -> Option<String> {
    let time = chrono::DateTime::<chrono::Utc>::from_timestamp(seconds, 0)?;
    Some(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Words that opt out, alone in a message (any case). `OPT OUT` is also read with a
/// hyphen (`OPT-OUT`) or several spaces: people write it all three ways and none means
/// anything else.
const OPT_OUT_WORDS: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
/// Words that opt back in, alone in a message (any case).
const OPT_IN_WORDS: [&str; 3] = ["START", "UNSTOP", "YES"];

/// The consent an SMS says, when the whole message is a keyword (DESIGN section 13):
/// `STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT, OPT OUT` opt out,
/// `START, UNSTOP, YES` opt back in. Any case; surrounding spaces and trailing
/// punctuation are ignored (`Stop.`, `stop!`, `YES!!`); `OPT OUT` may be written
/// `OPT-OUT` or with several spaces. A keyword inside a longer message ("stop sending me
/// stuff") is not one: only the whole message counts, as carriers read it.
pub fn sms_keyword(text: &str) -> Option<State> {
    let word = text
        .trim_end_matches(|c: char| {
            c.is_whitespace() || c.general_category_group() == GeneralCategoryGroup::Punctuation
        })
        .trim_start();
    // Keywords are short: anything longer is a sentence (and never worth a scan).
    if word.is_empty() || word.len() > 16 {
        return None;
    }
    let is = |w: &str| word.eq_ignore_ascii_case(w);
    if OPT_OUT_WORDS.into_iter().any(is) {
        return Some(State::OptedOut);
    }
    if OPT_IN_WORDS.into_iter().any(is) {
        return Some(State::OptedIn);
    }
    let mut parts = word
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|p| !p.is_empty());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(opt), Some(out), None)
            if opt.eq_ignore_ascii_case("OPT") && out.eq_ignore_ascii_case("OUT") =>
        {
            Some(State::OptedOut)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKETING: Category = Category::Marketing;

    fn signal(state: State, at: &str, source: ConsentSource, scope: Option<&str>) -> Signal {
        Signal {
            category: MARKETING,
            state,
            at: at.into(),
            source,
            scope: scope.map(str::to_string),
            evidence: format!("{}@{at}", source.as_str()),
        }
    }

    fn stop(at: &str, scope: Option<&str>) -> Signal {
        signal(State::OptedOut, at, ConsentSource::UserPreferences, scope)
    }

    fn resume(at: &str, scope: Option<&str>) -> Signal {
        signal(State::OptedIn, at, ConsentSource::UserPreferences, scope)
    }

    fn import(state: State, at: &str) -> Signal {
        signal(state, at, ConsentSource::Import, None)
    }

    /// Applies `signals` in order to empty consent: each one's result, and the end.
    fn run(signals: &[Signal]) -> (Vec<Applied>, Option<ConsentEntry>) {
        let mut consent = Consent::new();
        let applied = signals.iter().map(|s| apply(&mut consent, s)).collect();
        (applied, consent.remove(&MARKETING))
    }

    fn state_after(signals: &[Signal]) -> Option<State> {
        run(signals).1.map(|e| e.state)
    }

    use Applied::*;
    use State::{OptedIn, OptedOut};

    const T1: &str = "2026-11-21T10:00:00Z";
    const T2: &str = "2026-11-21T11:00:00Z";
    const T3: &str = "2026-11-21T12:00:00Z";
    const T4: &str = "2026-11-21T13:00:00Z";

    #[test]
    fn a_first_signal_is_stored_with_its_time_normalised() {
        let (applied, entry) = run(&[stop("2026-11-21T15:30:00+05:30", Some("A"))]);
        assert_eq!(applied, [Changed]);
        assert_eq!(
            entry,
            Some(ConsentEntry {
                state: OptedOut,
                at: "2026-11-21T10:00:00.000Z".into(),
                source: ConsentSource::UserPreferences,
                scope: Some("A".into()),
                evidence: "user_preferences@2026-11-21T15:30:00+05:30".into(),
            })
        );
    }

    #[test]
    fn an_event_older_than_the_stored_one_changes_nothing() {
        // GIVEN the user resumed at T2 WHEN their stop of T1 arrives late THEN it is stale
        assert_eq!(
            run(&[resume(T2, Some("A")), stop(T1, Some("A"))]),
            (vec![Changed, Stale], run(&[resume(T2, Some("A"))]).1)
        );
        // AND a late resume does not undo a later stop
        assert_eq!(
            run(&[stop(T2, Some("A")), resume(T1, Some("A"))]).0,
            [Changed, Stale]
        );
        // AND an import older than a business entry changes nothing either
        assert_eq!(
            run(&[import(OptedOut, T2), import(OptedIn, T1)]).0,
            [Changed, Stale]
        );
    }

    #[test]
    fn times_compare_as_times_whatever_their_offset_or_precision() {
        // 10:00:00.500Z is later than 10:00:00Z, though '.' sorts before 'Z' as text.
        let (applied, _) = run(&[
            import(OptedIn, "2026-11-21T10:00:00Z"),
            import(OptedOut, "2026-11-21T10:00:00.500Z"),
            import(OptedIn, "2026-11-21T11:00:00.250+01:00"),
        ]);
        assert_eq!(applied, [Changed, Changed, Stale]);
    }

    #[test]
    fn at_the_same_time_the_opt_out_wins() {
        assert_eq!(
            run(&[resume(T1, Some("A")), stop(T1, Some("A"))]).0,
            [Changed, Changed]
        );
        assert_eq!(
            run(&[stop(T1, Some("A")), resume(T1, Some("A"))]).0,
            [Changed, Stale]
        );
        assert_eq!(
            run(&[import(OptedIn, T1), import(OptedOut, T1)]).0,
            [Changed, Changed]
        );
        assert_eq!(
            run(&[import(OptedOut, T1), import(OptedIn, T1)]).0,
            [Changed, Stale]
        );
        // The same signal twice (a redelivery) is unchanged.
        assert_eq!(
            run(&[stop(T1, Some("A")), stop(T1, Some("A"))]).0,
            [Changed, Unchanged]
        );
    }

    #[test]
    fn only_the_users_own_opt_in_undoes_the_users_own_opt_out() {
        for user_stop in [
            stop(T1, Some("A")),
            signal(OptedOut, T1, ConsentSource::Keyword, None),
            signal(OptedOut, T1, ConsentSource::Status131050, Some("A")),
        ] {
            for business in [ConsentSource::Import, ConsentSource::Api] {
                let (applied, entry) =
                    run(&[user_stop.clone(), signal(OptedIn, T2, business, None)]);
                assert_eq!(applied, [Changed, KeptOptedOut], "{business:?}");
                assert_eq!(entry, run(std::slice::from_ref(&user_stop)).1);
            }
            let scope = user_stop.scope.as_deref();
            let keyword = signal(OptedIn, T2, ConsentSource::Keyword, scope);
            for user_opt_in in [resume(T2, scope), keyword] {
                assert_eq!(run(&[user_stop.clone(), user_opt_in]).0, [Changed, Changed]);
            }
        }
    }

    #[test]
    fn a_late_user_opt_out_outranks_a_newer_business_entry() {
        // GIVEN an import opted the contact in at T2 WHEN the user's STOP of T1 arrives
        // THEN it stands, as it would have had it arrived first
        let (applied, entry) = run(&[import(OptedIn, T2), stop(T1, Some("A"))]);
        assert_eq!(applied, [Changed, Changed]);
        let entry = entry.expect("stored");
        assert_eq!(
            (entry.state, entry.source),
            (OptedOut, ConsentSource::UserPreferences)
        );
        // AND it also takes the place of a business opt-out, so no import undoes it
        let late = [import(OptedOut, T2), stop(T1, None), import(OptedIn, T3)];
        assert_eq!(run(&late).0, [Changed, Changed, KeptOptedOut]);
        // AND a user's resume after the stop still works
        let resumed = [
            import(OptedIn, T3),
            stop(T1, Some("A")),
            resume(T2, Some("A")),
        ];
        assert_eq!(state_after(&resumed), Some(OptedIn));
    }

    #[test]
    fn business_signals_follow_each_other_by_time() {
        assert_eq!(
            run(&[
                import(OptedIn, T1),
                import(OptedOut, T2),
                import(OptedIn, T3),
                signal(OptedOut, T4, ConsentSource::Api, None),
            ])
            .0,
            [Changed, Changed, Changed, Changed]
        );
        // A business opt-out also replaces the user's older opt-in: when in doubt, out.
        assert_eq!(
            run(&[resume(T1, Some("A")), import(OptedOut, T2)]),
            (vec![Changed, Changed], run(&[import(OptedOut, T2)]).1)
        );
    }

    #[test]
    fn the_same_state_again_from_the_business_writes_nothing() {
        // Importing the same file again (a later stamp) is unchanged, and keeps the
        // first entry's evidence.
        let (applied, entry) = run(&[import(OptedIn, T1), import(OptedIn, T2)]);
        assert_eq!(applied, [Changed, Unchanged]);
        assert_eq!(entry.map(|e| e.at), Some("2026-11-21T10:00:00.000Z".into()));
        // A business opt-out on the user's own stop keeps the user's entry.
        let (applied, entry) = run(&[stop(T1, Some("A")), import(OptedOut, T2)]);
        assert_eq!(applied, [Changed, Unchanged]);
        assert_eq!(
            entry.map(|e| e.source),
            Some(ConsentSource::UserPreferences)
        );
        // A business opt-in on the user's own opt-in keeps the user's entry.
        let (applied, entry) = run(&[resume(T1, Some("A")), import(OptedIn, T2)]);
        assert_eq!(applied, [Changed, Unchanged]);
        assert_eq!(
            entry.map(|e| e.source),
            Some(ConsentSource::UserPreferences)
        );
    }

    #[test]
    fn the_users_own_word_refreshes_the_entry_so_late_signals_meet_the_latest() {
        // GIVEN an import opt-in, then the user's own resume on B at T3
        let signals = [import(OptedIn, T1), resume(T3, Some("B"))];
        assert_eq!(run(&signals).0, [Changed, Changed]);
        // WHEN their stop on B of T2 arrives late THEN the later resume stands
        let mut late = signals.to_vec();
        late.push(stop(T2, Some("B")));
        assert_eq!(run(&late).0, [Changed, Changed, Stale]);
        assert_eq!(state_after(&late), Some(OptedIn));
    }

    #[test]
    fn a_resume_on_another_number_leaves_the_stop_standing() {
        let (applied, entry) = run(&[stop(T1, Some("A")), resume(T2, Some("B"))]);
        assert_eq!(applied, [Changed, OtherScope]);
        assert_eq!(entry.and_then(|e| e.scope), Some("A".into()));
        // A resume without a scope covers every number.
        assert_eq!(
            state_after(&[stop(T1, Some("A")), resume(T2, None)]),
            Some(OptedIn)
        );
        // A stop on no number in particular is not undone by a resume on one.
        assert_eq!(
            run(&[stop(T1, None), resume(T2, Some("A"))]).0,
            [Changed, OtherScope]
        );
    }

    #[test]
    fn stops_on_two_numbers_become_a_stop_on_every_number() {
        // GIVEN stops on A then B
        let (applied, entry) = run(&[stop(T1, Some("A")), stop(T2, Some("B"))]);
        assert_eq!(applied, [Changed, Changed]);
        assert_eq!(entry.as_ref().map(|e| e.scope.clone()), Some(None));
        // THEN a resume on either number does not lift the other's stop
        for number in ["A", "B"] {
            let signals = [
                stop(T1, Some("A")),
                stop(T2, Some("B")),
                resume(T3, Some(number)),
            ];
            assert_eq!(run(&signals).0, [Changed, Changed, OtherScope]);
            assert_eq!(state_after(&signals), Some(OptedOut));
        }
        // AND so when B's stop arrives late, or at the same time
        for at in [T1, "2026-11-21T09:00:00Z"] {
            let signals = [
                stop(T1, Some("A")),
                stop(at, Some("B")),
                resume(T3, Some("A")),
            ];
            assert_eq!(run(&signals).0, [Changed, Changed, OtherScope]);
        }
        // AND a later stop on A alone does not narrow it again
        let signals = [
            stop(T1, Some("A")),
            stop(T2, Some("B")),
            stop(T3, Some("A")),
        ];
        assert_eq!(run(&signals).1.and_then(|e| e.scope), None);
    }

    #[test]
    fn a_late_stop_on_a_number_the_newer_resume_did_not_cover_applies() {
        // GIVEN the user resumed on A at T2 WHEN their stop on B of T1 arrives
        let signals = [resume(T2, Some("A")), stop(T1, Some("B"))];
        // THEN B stays stopped: the resume on A could not have lifted it
        assert_eq!(run(&signals).0, [Changed, Changed]);
        assert_eq!(state_after(&signals), Some(OptedOut));
        // AND a later resume on A still does not
        let mut later = signals.to_vec();
        later.push(resume(T3, Some("A")));
        assert_eq!(run(&later).0, [Changed, Changed, OtherScope]);
    }

    #[test]
    fn categories_are_independent() {
        let mut consent = Consent::new();
        apply(&mut consent, &stop(T1, Some("A")));
        let utility = Signal {
            category: Category::Utility,
            ..import(OptedIn, T2)
        };
        assert_eq!(apply(&mut consent, &utility), Changed);
        assert_eq!(consent.len(), 2);
        assert_eq!(consent[&Category::Marketing].state, OptedOut);
    }

    #[test]
    fn consent_times_are_utc_milliseconds() {
        assert_eq!(
            consent_time("2026-11-21T15:30:00.123456+05:30").as_deref(),
            Some("2026-11-21T10:00:00.123Z")
        );
        assert_eq!(consent_time("yesterday"), None);
        assert_eq!(
            consent_time_from_unix(1_764_324_000).as_deref(),
            Some("2025-11-28T10:00:00.000Z")
        );
    }

    #[test]
    fn sms_keywords_are_the_whole_message_in_any_case() {
        for text in [
            "STOP",
            "stop",
            "Stop.",
            "stop!",
            " STOP \n",
            "StopAll",
            "unsubscribe",
            "Cancel",
            "END",
            "quit?",
            "Revoke",
            "optout",
            "OPT OUT",
            "opt out!",
            "Opt-Out",
            "opt   out",
            "STOP!!!",
            "stop…",
            "STOP ",
            "stop。",
        ] {
            assert_eq!(sms_keyword(text), Some(OptedOut), "{text:?}");
        }
        for text in ["START", "start", "Unstop", "yes", "Yes!", " YES. "] {
            assert_eq!(sms_keyword(text), Some(OptedIn), "{text:?}");
        }
        for text in [
            "",
            "   ",
            "!",
            "stop sending me stuff",
            "please stop",
            "STOP STOP",
            "stopp",
            "yes please",
            "opt in",
            "opt out now",
            "OPT-OUT-ALL",
            "¿stop",
            "s t o p",
            "Hi",
        ] {
            assert_eq!(sms_keyword(text), None, "{text:?}");
        }
    }
}
