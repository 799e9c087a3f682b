//! GitLab Duo and other add-ons: the catalogue, when a purchase is active, how license add-on
//! products become instance purchases, and the seat rules of the assignment mutations.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::license_key::{AddOnProduct, License};

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

/// The product's name as GitLab's pages show it ("GitLab Duo Pro" for `code_suggestions`).
pub fn product_name(add_on_name: &str) -> String {
    match add_on_name {
        "code_suggestions" => "GitLab Duo Pro".into(),
        "duo_enterprise" => "GitLab Duo Enterprise".into(),
        "duo_amazon_q" => "GitLab Duo with Amazon Q".into(),
        "duo_core" => "GitLab Duo Core".into(),
        "self_hosted_dap" => "GitLab Duo Agent Platform Self-Hosted".into(),
        "product_analytics" => "Product Analytics".into(),
        other => display_name(other),
    }
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
    /// GitLab's `AddOnPurchase` validations: the first failing field and its message. (GitLab
    /// has no rule that the expiry follows the start; such a purchase is simply never active.)
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.quantity < 1 {
            Some(("quantity", "must be greater than or equal to 1"))
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

/// The license-provisioned add-ons that share one instance purchase, in order of precedence:
/// GitLab keeps one GitLab Duo purchase (`provision_services/duo_exclusive.rb`) whose add-on
/// the current license decides — Amazon Q over Enterprise over Pro — so that an upgrade
/// changes the purchase in place and keeps its seat assignments. The others stand alone.
pub const PROVISIONED_SLOTS: &[&[&str]] = &[
    &["duo_amazon_q", "duo_enterprise", "code_suggestions"],
    &["duo_core"],
    &["self_hosted_dap"],
];

/// What the current license makes of one slot: the add-on it provisions, with its terms, or
/// nothing (an earlier purchase of the slot is then ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The add-ons of the slot ([`PROVISIONED_SLOTS`]).
    pub slot: &'static [&'static str],
    pub chosen: Option<(&'static str, PurchaseTerms)>,
}

/// GitLab's `license_add_ons/base.rb` over a product's entries: those with a quantity above 0
/// count; the quantity is their sum, the start the earliest, the expiry the latest, the
/// reference the first one given, and it is a trial only if every entry is. `None` when no
/// entry counts, or when no entry gives a start and an expiry (a purchase needs both).
pub fn merged_terms(entries: &[AddOnProduct]) -> Option<PurchaseTerms> {
    let active: Vec<&AddOnProduct> = entries.iter().filter(|entry| entry.quantity > 0).collect();
    if active.is_empty() {
        return None;
    }
    Some(PurchaseTerms {
        quantity: active
            .iter()
            .map(|entry| entry.quantity)
            .fold(0i64, i64::saturating_add),
        started_on: active.iter().filter_map(|entry| entry.started_on).min()?,
        expires_on: active.iter().filter_map(|entry| entry.expires_on).max()?,
        purchase_xid: active.iter().find_map(|entry| entry.purchase_xid.clone()),
        trial: active.iter().all(|entry| entry.trial),
    })
}

/// What the current license provisions, slot by slot. As in GitLab
/// (`provision_services/base.rb`), only a cloud license provisions anything; without one
/// (or with none current) every slot is empty and earlier purchases end.
pub fn provisioned_from_license(license: Option<&License>) -> Vec<Provisioned> {
    let products = license
        .filter(|license| license.cloud_licensing_enabled)
        .map(|license| &license.restrictions.add_on_products);
    PROVISIONED_SLOTS
        .iter()
        .map(|slot| Provisioned {
            slot,
            chosen: slot.iter().find_map(|name| {
                let product = add_on(name)?.license_product?;
                let entries = products?.get(product)?;
                merged_terms(entries).map(|terms| (*name, terms))
            }),
        })
        .collect()
}

/// An instance purchase as it stands, for working out what a license would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePurchase {
    pub id: i64,
    pub add_on_name: String,
    pub terms: PurchaseTerms,
    /// Seats assigned now.
    pub assigned: i64,
}

/// What provisioning from a license would do to one instance purchase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseAction {
    Create,
    Change,
    Expire,
}

/// One change to the instance's purchases, and the seats it would take back: for a change to
/// fewer seats, the newest assignments beyond the new quantity (GitLab's overage rule); for
/// an expiry, every assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseChange {
    pub action: PurchaseAction,
    /// The purchase changed or ended (none for a new one).
    pub purchase_id: Option<i64>,
    pub add_on_name: String,
    pub before: Option<PurchaseTerms>,
    pub after: Option<PurchaseTerms>,
    pub assigned: i64,
    /// How many of the assigned seats would be taken back.
    pub seats_lost: i64,
}

/// What provisioning `plan` would do to the instance's `existing` purchases, slot by slot —
/// the same decisions the store's provisioning makes (the purchase of the chosen add-on is
/// kept and changed in place, any other active one of its slot ends), without writing.
pub fn purchase_changes(
    plan: &[Provisioned],
    existing: &[InstancePurchase],
    today: NaiveDate,
) -> Vec<PurchaseChange> {
    let mut changes = Vec::new();
    for Provisioned { slot, chosen } in plan {
        let chosen_name = chosen.as_ref().map_or("", |(name, _)| *name);
        let mut rows: Vec<&InstancePurchase> = existing
            .iter()
            .filter(|purchase| slot.contains(&purchase.add_on_name.as_str()))
            .collect();
        rows.sort_by_key(|purchase| (purchase.add_on_name != chosen_name, purchase.id));
        let mut kept = None;
        if let Some((name, terms)) = chosen {
            match rows.first() {
                None => changes.push(PurchaseChange {
                    action: PurchaseAction::Create,
                    purchase_id: None,
                    add_on_name: (*name).to_string(),
                    before: None,
                    after: Some(terms.clone()),
                    assigned: 0,
                    seats_lost: 0,
                }),
                Some(first) => {
                    kept = Some(first.id);
                    if &first.terms != terms || first.add_on_name != *name {
                        changes.push(PurchaseChange {
                            action: PurchaseAction::Change,
                            purchase_id: Some(first.id),
                            add_on_name: (*name).to_string(),
                            before: Some(first.terms.clone()),
                            after: Some(terms.clone()),
                            assigned: first.assigned,
                            seats_lost: (first.assigned - terms.quantity).max(0),
                        });
                    }
                }
            }
        }
        for purchase in rows {
            let active = is_active(purchase.terms.started_on, purchase.terms.expires_on, today);
            if Some(purchase.id) != kept && active {
                changes.push(PurchaseChange {
                    action: PurchaseAction::Expire,
                    purchase_id: Some(purchase.id),
                    add_on_name: purchase.add_on_name.clone(),
                    before: Some(purchase.terms.clone()),
                    after: None,
                    assigned: purchase.assigned,
                    seats_lost: purchase.assigned,
                });
            }
        }
    }
    changes
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

    fn entry(
        quantity: i64,
        start: Option<&str>,
        end: Option<&str>,
        xid: Option<&str>,
        trial: bool,
    ) -> AddOnProduct {
        AddOnProduct {
            quantity,
            started_on: start.map(date),
            expires_on: end.map(date),
            purchase_xid: xid.map(str::to_string),
            trial,
        }
    }

    #[test]
    fn entries_merge_as_gitlab_merges_them() {
        let terms = merged_terms(&[
            entry(
                0,
                Some("2019-01-01"),
                Some("2040-01-01"),
                Some("A-0"),
                false,
            ),
            entry(3, Some("2026-03-01"), Some("2027-01-01"), None, true),
            entry(2, Some("2026-01-01"), None, Some("A-2"), true),
            entry(4, None, Some("2027-06-01"), Some("A-4"), true),
        ])
        .expect("terms");
        // Zero-quantity entries do not count, dates or not; dates are not filtered by today.
        assert_eq!(terms.quantity, 9);
        assert_eq!(terms.started_on, date("2026-01-01"));
        assert_eq!(terms.expires_on, date("2027-06-01"));
        assert_eq!(terms.purchase_xid.as_deref(), Some("A-2"));
        assert!(terms.trial);
        let mixed = merged_terms(&[
            entry(1, Some("2026-01-01"), Some("2027-01-01"), None, true),
            entry(1, Some("2026-01-01"), Some("2027-01-01"), None, false),
        ])
        .expect("terms");
        assert!(!mixed.trial);
        assert_eq!(mixed.purchase_xid, None);
        assert_eq!(merged_terms(&[entry(0, None, None, None, false)]), None);
        assert_eq!(
            merged_terms(&[entry(5, None, Some("2027-01-01"), None, false)]),
            None
        );
    }

    fn license_with(products: serde_json::Value, cloud: bool) -> License {
        let mut payload = serde_json::json!({
            "licensee": {"Name": "A"}, "issued_at": "2026-01-01", "expires_at": "2027-01-01",
            "restrictions": {"add_on_products": products}
        });
        if cloud {
            payload["cloud_licensing_enabled"] = serde_json::json!(true);
        }
        crate::license_key::payload::parse(payload.to_string().as_bytes()).expect("license")
    }

    #[test]
    fn duo_is_one_purchase_chosen_by_precedence_and_only_cloud_licenses_provision() {
        let both = serde_json::json!({
            "duo_pro": [{"quantity": 3, "started_on": "2026-01-01", "expires_on": "2027-01-01"}],
            "duo_enterprise": [{"quantity": 4, "started_on": "2026-01-01", "expires_on": "2027-01-01"}],
            "duo_core": [{"quantity": 10, "started_on": "2026-01-01", "expires_on": "2027-01-01"}]
        });
        let provisioned = provisioned_from_license(Some(&license_with(both.clone(), true)));
        assert_eq!(provisioned.len(), PROVISIONED_SLOTS.len());
        let duo = provisioned[0].chosen.as_ref().expect("duo");
        assert_eq!((duo.0, duo.1.quantity), ("duo_enterprise", 4));
        assert_eq!(
            provisioned[1].chosen.as_ref().map(|(name, _)| *name),
            Some("duo_core")
        );
        assert_eq!(provisioned[2].chosen, None);
        // A classic license provisions nothing, however many products it lists.
        let classic = provisioned_from_license(Some(&license_with(both, false)));
        assert!(classic.iter().all(|slot| slot.chosen.is_none()));
        assert!(provisioned_from_license(None)
            .iter()
            .all(|slot| slot.chosen.is_none()));
        // Amazon Q wins over everything.
        let q = serde_json::json!({
            "duo_pro": [{"quantity": 3, "started_on": "2026-01-01", "expires_on": "2027-01-01"}],
            "duo_amazon_q": [{"quantity": 1, "started_on": "2026-01-01", "expires_on": "2027-01-01"}]
        });
        let provisioned = provisioned_from_license(Some(&license_with(q, true)));
        assert_eq!(
            provisioned[0].chosen.as_ref().map(|(name, _)| *name),
            Some("duo_amazon_q")
        );
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
