//! The roles a caller can have: Cognito groups, named in the token's `cognito:groups` claim.

use std::fmt;
use std::str::FromStr;

/// A role that some operation of the API needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Customer,
    Staff,
    Merchandiser,
    Marketing,
}

impl Role {
    /// Every role, in the order the documentation lists them.
    pub const ALL: [Role; 4] = [
        Role::Customer,
        Role::Staff,
        Role::Merchandiser,
        Role::Marketing,
    ];

    /// The group's name in `cognito:groups`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Staff => "staff",
            Role::Merchandiser => "merchandiser",
            Role::Marketing => "marketing",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = crate::Error;

    /// Exact and case-sensitive, as the handlers compare groups.
    fn from_str(name: &str) -> Result<Self, crate::Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| crate::Error::UnknownRole(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_near_misses_are_no_role() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>().unwrap(), role);
        }
        for name in ["Staff", "CUSTOMER", "admin", ""] {
            assert!(name.parse::<Role>().is_err(), "{name}");
        }
    }
}
