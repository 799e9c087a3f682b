//! GitLab Duo and other add-ons: the catalogue, when a purchase is active, how license add-on
//! products become instance purchases, and the seat rules of the assignment mutations.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::license_key::AddOnProduct;

/// One add-on GitLab sells (`GitlabSubscriptions::AddOn`, newest catalogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOn {
    /// The internal name (`code_suggestions`); GraphQL shows it upper-cased.
    pub name: &'static str,
    /// The `add_on_products` key a license uses for it, where licenses carry it.
    pub license_product: Option<&'static str>,
    /// Part of `DUO_ADD_ONS`: the bulk assignment accepts only these.
    pub duo: bool,
}

pub const CATALOGUE: &[AddOn] = &[
    AddOn {
        name: "code_suggestions",
        license_product: Some("duo_pro"),
        duo: true,
    },
    AddOn {
        name: "product_analytics",
        license_product: None,
        duo: false,
    },
    AddOn {
        name: "duo_enterprise",
        license_product: Some("duo_enterprise"),
        duo: true,
    },
    AddOn {
        name: "duo_amazon_q",
        license_product: Some("duo_amazon_q"),
        duo: true,
    },
    AddOn {
        name: "duo_core",
        license_product: Some("duo_core"),
        duo: true,
    },
    AddOn {
        name: "self_hosted_dap",
        license_product: Some("self_hosted_dap"),
        duo: true,
    },
    AddOn {
        name: "gitlab_credits",
        license_product: None,
        duo: true,
    },
    AddOn {
        name: "secrets_manager",
        license_product: None,
        duo: false,
    },
    AddOn {
        name: "flex_offline",
        license_product: None,
        duo: false,
    },
];

/// The add-on called `name` (internal, case-insensitive: `CODE_SUGGESTIONS` works too).
pub fn add_on(name: &str) -> Option<&'static AddOn> {
    CATALOGUE
        .iter()
        .find(|add_on| add_on.name.eq_ignore_ascii_case(name))
}

/// GraphQL's `AddOnPurchase.name`: the internal name upper-cased.
pub fn display_name(internal: &str) -> String {
    internal.to_ascii_uppercase()
}

/// GitLab's active predicate: started, and not yet at the expiry date (a purchase is inactive
/// on its expiry date itself).
pub fn is_active(started_on: NaiveDate, expires_on: NaiveDate, today: NaiveDate) -> bool {
    started_on <= today && today < expires_on
}

/// The figures of a purchase as a license provisions it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseTerms {
    pub quantity: i64,
    pub started_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub purchase_xid: Option<String>,
    pub trial: bool,
}

impl PurchaseTerms {
    /// GitLab's `AddOnPurchase` validations: the first failing field and its message.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.quantity < 1 {
            Some(("quantity", "must be greater than or equal to 1"))
        } else if self.expires_on <= self.started_on {
            Some(("expires_on", "must be after started_on"))
        } else if self
            .purchase_xid
            .as_ref()
            .is_some_and(|xid| xid.len() > 255)
        {
            Some(("purchase_xid", "is too long (maximum is 255 characters)"))
        } else {
            None
        }
    }
}

/// What the current license says about each license-provisioned add-on: `Some(terms)` for
/// the add-ons it sells today, `None` for those it does not (their instance purchase, if any,
/// is ended). Several entries for one product that are active today add up, spanning from the
/// earliest start to the latest expiry, as GitLab's license add-on provisioning does.
pub fn provisioned_from_license<'a>(
    products: impl Fn(&str) -> Option<&'a [AddOnProduct]>,
    today: NaiveDate,
) -> Vec<(&'static str, Option<PurchaseTerms>)> {
    CATALOGUE
        .iter()
        .filter_map(|add_on| add_on.license_product.map(|product| (add_on.name, product)))
        .map(|(name, product)| {
            let active: Vec<(&AddOnProduct, NaiveDate, NaiveDate)> = products(product)
                .unwrap_or_default()
                .iter()
                .filter_map(|entry| {
                    let started_on = entry.started_on?;
                    let expires_on = entry.expires_on?;
                    (entry.quantity > 0 && is_active(started_on, expires_on, today))
                        .then_some((entry, started_on, expires_on))
                })
                .collect();
            let terms = active.first().map(|(first, _, _)| PurchaseTerms {
                quantity: active
                    .iter()
                    .map(|(entry, _, _)| i64::try_from(entry.quantity).unwrap_or(i64::MAX))
                    .fold(0i64, i64::saturating_add),
                started_on: active
                    .iter()
                    .map(|(_, start, _)| *start)
                    .min()
                    .unwrap_or(today),
                expires_on: active.iter().map(|(_, _, end)| *end).max().unwrap_or(today),
                purchase_xid: first.purchase_xid.clone(),
                trial: first.trial,
            });
            (name, terms)
        })
        .collect()
}

/// What the store found, under the purchase's lock, for a seat assignment.
#[derive(Debug, Clone, Default)]
pub struct SeatFacts {
    pub quantity: i64,
    pub assigned: i64,
    /// Requested users who may hold a seat of this purchase.
    pub eligible: BTreeSet<i64>,
    /// Requested users who hold one already.
    pub already_assigned: BTreeSet<i64>,
}

/// The outcome codes of the assignment mutations (payload `errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatRefusal {
    /// Bulk: not enough free seats for the users who need one.
    NotEnoughSeats,
    /// Bulk: none of the requested users may hold a seat.
    InvalidUserIdPresent,
    /// Single: no free seat.
    NoSeatsAvailable,
    /// Single: the user may not hold a seat.
    InvalidUserMembership,
}

impl SeatRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotEnoughSeats => "NOT_ENOUGH_SEATS",
            Self::InvalidUserIdPresent => "INVALID_USER_ID_PRESENT",
            Self::NoSeatsAvailable => "NO_SEATS_AVAILABLE",
            Self::InvalidUserMembership => "INVALID_USER_MEMBERSHIP",
        }
    }
}

/// The bulk rule (GitLab 18): ineligible users are dropped; with none eligible the call fails;
/// the seats needed by eligible users without one must all be free, or nothing is assigned.
/// Returns the users to insert and the users the payload lists (every eligible one).
pub fn decide_bulk(facts: &SeatFacts) -> Result<(Vec<i64>, Vec<i64>), SeatRefusal> {
    if facts.eligible.is_empty() {
        return Err(SeatRefusal::InvalidUserIdPresent);
    }
    let to_insert: Vec<i64> = facts
        .eligible
        .difference(&facts.already_assigned)
        .copied()
        .collect();
    let available = facts.quantity - facts.assigned;
    if available < to_insert.len() as i64 {
        return Err(SeatRefusal::NotEnoughSeats);
    }
    Ok((to_insert, facts.eligible.iter().copied().collect()))
}

/// The single-user rule: an existing seat is success without any check; then a free seat is
/// needed, then eligibility (GitLab checks in this order).
pub fn decide_single(facts: &SeatFacts, user_id: i64) -> Result<Vec<i64>, SeatRefusal> {
    if facts.already_assigned.contains(&user_id) {
        return Ok(Vec::new());
    }
    if facts.quantity <= facts.assigned {
        return Err(SeatRefusal::NoSeatsAvailable);
    }
    if !facts.eligible.contains(&user_id) {
        return Err(SeatRefusal::InvalidUserMembership);
    }
    Ok(vec![user_id])
}

/// GitLab's bulk limits: "less than 100" in the message, yet exactly 100 is allowed.
pub const MAX_BULK_USERS: usize = 100;
pub const BULK_ASSIGN_LIMIT_MESSAGE: &str =
    "The number of users to be assigned in a single API call should be less than 100.";
pub const BULK_UNASSIGN_LIMIT_MESSAGE: &str =
    "The number of users to be unassigned in a single API call should be less than 100.";

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn facts(quantity: i64, assigned: i64, eligible: &[i64], already: &[i64]) -> SeatFacts {
        SeatFacts {
            quantity,
            assigned,
            eligible: eligible.iter().copied().collect(),
            already_assigned: already.iter().copied().collect(),
        }
    }

    #[test]
    fn active_from_start_until_the_day_before_expiry() {
        let (start, end) = (date("2026-01-01"), date("2026-12-31"));
        assert!(!is_active(start, end, date("2025-12-31")));
        assert!(is_active(start, end, start));
        assert!(is_active(start, end, date("2026-12-30")));
        assert!(!is_active(start, end, end));
    }

    #[test]
    fn bulk_needs_seats_only_for_new_holders() {
        assert_eq!(
            decide_bulk(&facts(3, 2, &[1, 2], &[1])),
            Ok((vec![2], vec![1, 2]))
        );
        assert_eq!(
            decide_bulk(&facts(3, 3, &[1, 2], &[1])),
            Err(SeatRefusal::NotEnoughSeats)
        );
        assert_eq!(decide_bulk(&facts(3, 3, &[1], &[1])), Ok((vec![], vec![1])));
        // Over-assigned already: even a no-op request fails, as GitLab's does.
        assert_eq!(
            decide_bulk(&facts(2, 3, &[1], &[1])),
            Err(SeatRefusal::NotEnoughSeats)
        );
        assert_eq!(
            decide_bulk(&facts(3, 0, &[], &[])),
            Err(SeatRefusal::InvalidUserIdPresent)
        );
    }

    #[test]
    fn single_checks_existing_seat_then_seats_then_eligibility() {
        assert_eq!(decide_single(&facts(1, 5, &[], &[7]), 7), Ok(vec![]));
        assert_eq!(
            decide_single(&facts(1, 1, &[7], &[]), 7),
            Err(SeatRefusal::NoSeatsAvailable)
        );
        assert_eq!(
            decide_single(&facts(2, 1, &[], &[]), 7),
            Err(SeatRefusal::InvalidUserMembership)
        );
        assert_eq!(decide_single(&facts(2, 1, &[7], &[]), 7), Ok(vec![7]));
    }

    #[test]
    fn license_products_add_up_while_active() {
        let entry = |quantity, start: &str, end: &str| AddOnProduct {
            quantity,
            started_on: Some(date(start)),
            expires_on: Some(date(end)),
            purchase_xid: Some(format!("A-{quantity}")),
            trial: false,
        };
        let pro = vec![
            entry(3, "2026-01-01", "2027-01-01"),
            entry(2, "2026-03-01", "2027-06-01"),
            entry(9, "2020-01-01", "2021-01-01"),
        ];
        let provisioned = provisioned_from_license(
            |product| (product == "duo_pro").then_some(pro.as_slice()),
            date("2026-06-15"),
        );
        let code_suggestions = provisioned
            .iter()
            .find(|(name, _)| *name == "code_suggestions")
            .and_then(|(_, terms)| terms.clone())
            .expect("duo pro provisioned");
        assert_eq!(code_suggestions.quantity, 5);
        assert_eq!(code_suggestions.started_on, date("2026-01-01"));
        assert_eq!(code_suggestions.expires_on, date("2027-06-01"));
        assert_eq!(code_suggestions.purchase_xid.as_deref(), Some("A-3"));
        assert!(provisioned
            .iter()
            .filter(|(name, _)| *name != "code_suggestions")
            .all(|(_, terms)| terms.is_none()));
    }

    #[test]
    fn catalogue_lookup_ignores_case() {
        assert_eq!(
            add_on("CODE_SUGGESTIONS").map(|a| a.name),
            Some("code_suggestions")
        );
        assert!(add_on("product_analytics").is_some_and(|a| !a.duo));
        assert!(add_on("duo_nano").is_none());
        assert_eq!(display_name("duo_enterprise"), "DUO_ENTERPRISE");
    }
}
