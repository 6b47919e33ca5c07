//! Numbers as events give them, read as contacts store them (E.164).

use super::error::{invalid, EventError};
use super::payload::Text;
use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::phone::{self, PhoneContext, Region};
use crate::ports::SettingsStore;

/// The region national numbers are read in: the event's `default_country`, else the
/// account's setting, else the function's.
pub(super) async fn region_for<S: SettingsStore>(
    settings: &S,
    config: &Config,
    default_country: Text<8>,
    account_id: &str,
) -> Result<Option<Region>, EventError> {
    if let Some(code) = default_country.into_option() {
        return Region::parse(&code).map(Some).ok_or_else(|| {
            invalid(
                "default_country",
                format!("{code:?} is not an ISO 3166-1 alpha-2 country code"),
            )
        });
    }
    let setting = settings.default_country(account_id).await?;
    Ok(setting
        .and_then(|c| Region::parse(&c))
        .or(config.default_country))
}

/// A number as contacts are stored (E.164), read in [`region_for`]'s region: any valid
/// number, whatever the channel (an inbound sender, an erasure request). A number that
/// does not read is an invalid `field`.
pub(super) async fn any_number<S: SettingsStore>(
    settings: &S,
    config: &Config,
    raw: &str,
    field: &str,
    default_country: Text<8>,
    account_id: &str,
) -> Result<String, EventError> {
    let context = PhoneContext {
        default_region: region_for(settings, config, default_country, account_id).await?,
        channel: Channel::Voice,
    };
    phone::normalize(raw, None, context).map_err(|e| invalid(field, format!("{e} ({})", e.code())))
}
