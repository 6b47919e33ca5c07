//! DynamoDB capacity as a user pays for it (DESIGN section 9): write and read units as
//! DynamoDB reports them, what failed conditions were charged, and requests.

use serde::{Deserialize, Serialize};

/// Capacity consumed: summary.json's `consumed` (DESIGN section 8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Consumed {
    /// Write units, index writes and charged failures included.
    pub write_units: f64,
    /// Read units, index reads included.
    pub read_units: f64,
    /// Requests that reached DynamoDB (every attempt of a retried call).
    pub requests: u64,
}

/// Units are whole or half units (never NaN), so equality is an equivalence.
impl Eq for Consumed {}

impl Consumed {
    /// What was consumed between `earlier` and `self` (two readings of one meter).
    pub fn since(&self, earlier: &Consumed) -> Consumed {
        Consumed {
            write_units: self.write_units - earlier.write_units,
            read_units: self.read_units - earlier.read_units,
            requests: self.requests.saturating_sub(earlier.requests),
        }
    }

    /// Both together.
    pub fn plus(&self, other: &Consumed) -> Consumed {
        Consumed {
            write_units: self.write_units + other.write_units,
            read_units: self.read_units + other.read_units,
            requests: self.requests + other.requests,
        }
    }

    /// The same, with units rounded to the half unit DynamoDB counts in (summing
    /// many floats leaves dust like 12.499999999).
    pub fn rounded(&self) -> Consumed {
        let half = |units: f64| (units * 2.0).round() / 2.0;
        Consumed {
            write_units: half(self.write_units),
            read_units: half(self.read_units),
            requests: self.requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_subtract_add_and_round_to_half_units() {
        let before = Consumed {
            write_units: 1.0,
            read_units: 0.5,
            requests: 2,
        };
        let after = Consumed {
            write_units: 4.0000001,
            read_units: 3.0,
            requests: 7,
        };
        let spent = after.since(&before).rounded();
        assert_eq!(
            spent,
            Consumed {
                write_units: 3.0,
                read_units: 2.5,
                requests: 5
            }
        );
        assert_eq!(spent.plus(&before).requests, 7);
    }
}
