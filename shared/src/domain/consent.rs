//! Consent per contact and category (DESIGN section 13): who said yes or no to which
//! kind of message, when, and what proves it.

use std::collections::BTreeMap;

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
