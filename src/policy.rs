//! The one authorization policy: from a token (as `auth` looked it up) to who the caller is and
//! what they may do — or why not. Pure: the caller brings the token record, the Admin Mode
//! setting and today's date. The REST API, GraphQL and the subscription page all decide here,
//! and each only maps an [`AuthError`] to its own shape (REST: GitLab's 401/403 bodies;
//! GraphQL: 401 "Invalid token"; the page: a sentence).

use std::sync::Arc;

use chrono::NaiveDate;

use crate::domain::tokens::Scope;
use crate::domain::users::UserState;
use crate::store::{TokenWithUser, User};

/// What the request does with the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Reads (GET, HEAD, GraphQL): `api`, or one of these read scopes.
    Read(&'static [Scope]),
    /// Changes something: `api` only.
    Write,
    /// Changes something a narrower scope also allows (`self_rotate`): `api` or one of these;
    /// `names` is how GitLab's refusal lists them (`api self_rotate`).
    WriteWith {
        scopes: &'static [Scope],
        names: &'static str,
    },
}

/// The instance settings the rules depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Administrator rights need the `admin_mode` scope.
    pub admin_mode: bool,
    pub today: NaiveDate,
}

/// Why a token does not authorize the request, in the order GitLab checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Revoked,
    Expired,
    /// The scopes that would do, as GitLab's message lists them (`api read_api`).
    InsufficientScope(&'static str),
    /// The account may not use the API: blocked, deactivated, banned or pending approval.
    Account(UserState),
}

/// An authenticated caller and what it may do, decided once.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token: Arc<TokenWithUser>,
    /// Acts as an administrator: an administrator's token, with the `admin_mode` scope where
    /// Admin Mode is on. Every "may see everything" decision reads this, never `user().admin`.
    pub admin: bool,
    /// May change things: the `api` scope.
    pub can_write: bool,
}

impl Principal {
    pub fn user(&self) -> &User {
        &self.token.user
    }

    /// The proof that this caller acts as an administrator, if it does.
    pub fn into_admin(self) -> Result<AdminPrincipal, Self> {
        if self.admin {
            Ok(AdminPrincipal(self))
        } else {
            Err(self)
        }
    }
}

/// A [`Principal`] proven to act as an administrator. Only [`Principal::into_admin`] makes
/// one, so an administrator-only service, which takes it, cannot be reached from a path that
/// did not check.
#[derive(Debug, Clone)]
pub struct AdminPrincipal(Principal);

impl std::ops::Deref for AdminPrincipal {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// GitLab's rules, in GitLab's order: not revoked, not expired, a scope that fits what the
/// request does, an active account. Administrator rights are decided here too.
pub fn authorize(
    token: Arc<TokenWithUser>,
    settings: Settings,
    need: Need,
) -> Result<Principal, AuthError> {
    if token.revoked {
        return Err(AuthError::Revoked);
    }
    if token
        .expires_at
        .is_some_and(|expires_at| settings.today >= expires_at)
    {
        return Err(AuthError::Expired);
    }
    let can_write = token.has_scope(Scope::Api);
    let scope_fits = match need {
        Need::Write => can_write,
        Need::Read(scopes) | Need::WriteWith { scopes, .. } => {
            can_write || scopes.iter().any(|scope| token.has_scope(*scope))
        }
    };
    if !scope_fits {
        return Err(AuthError::InsufficientScope(match need {
            Need::Write => "api",
            Need::WriteWith { names, .. } => names,
            Need::Read([Scope::ReadApi]) => "api read_api",
            Need::Read(_) => "api read_api read_user",
        }));
    }
    if token.user.state != UserState::Active {
        return Err(AuthError::Account(token.user.state));
    }
    let admin = token.user.admin && (!settings.admin_mode || token.has_scope(Scope::AdminMode));
    Ok(Principal {
        token,
        admin,
        can_write,
    })
}

/// What a request to the instance SCIM API may do (GitLab's `instance_scim.rb`: the token is
/// checked before anything else, then the license feature `instance_level_scim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimAccess {
    Allowed,
    /// Not the instance SCIM token: GitLab's plain 401.
    Unauthorized,
    /// No license whose plan has instance SCIM (Premium, Ultimate): GitLab's plain 404.
    NotLicensed,
}

/// The instance SCIM API's rule: the instance SCIM token (`token_matches`), then a current
/// license on Premium or Ultimate (`plan`). SAML is not this server's (its users sign in
/// elsewhere), so GitLab's "SAML SSO must be enabled" check has nothing to refuse.
pub fn scim_access(token_matches: bool, plan: Option<&str>) -> ScimAccess {
    if !token_matches {
        ScimAccess::Unauthorized
    } else if !matches!(plan, Some("premium" | "ultimate")) {
        ScimAccess::NotLicensed
    } else {
        ScimAccess::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tokens::Scopes;

    #[test]
    fn scim_needs_the_token_then_premium_or_ultimate() {
        assert_eq!(
            scim_access(false, Some("ultimate")),
            ScimAccess::Unauthorized
        );
        assert_eq!(scim_access(true, None), ScimAccess::NotLicensed);
        assert_eq!(scim_access(true, Some("starter")), ScimAccess::NotLicensed);
        assert_eq!(scim_access(true, Some("premium")), ScimAccess::Allowed);
        assert_eq!(scim_access(true, Some("ultimate")), ScimAccess::Allowed);
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 15).expect("date")
    }

    fn token(scopes: &str, admin: bool, state: UserState) -> TokenWithUser {
        TokenWithUser {
            token_id: 1,
            token_name: "t".into(),
            scopes: Scopes::from(scopes.to_string()),
            expires_at: None,
            revoked: false,
            last_used_at: None,
            user: User {
                id: 2,
                username: "u".into(),
                name: "U".into(),
                email: "u@example.com".into(),
                state,
                user_type: crate::domain::users::UserType::Human,
                admin,
                created_at: chrono::DateTime::UNIX_EPOCH,
                last_activity_on: None,
            },
        }
    }

    fn check(token: TokenWithUser, admin_mode: bool, need: Need) -> Result<Principal, AuthError> {
        let settings = Settings {
            admin_mode,
            today: today(),
        };
        authorize(Arc::new(token), settings, need)
    }

    const READ: Need = Need::Read(&[Scope::ReadApi]);

    #[test]
    fn revoked_then_expired_come_first() {
        let mut revoked = token("api", true, UserState::Blocked);
        revoked.revoked = true;
        revoked.expires_at = Some(today());
        assert_eq!(check(revoked, false, READ).err(), Some(AuthError::Revoked));
        let mut expired = token("read_user", true, UserState::Blocked);
        expired.expires_at = Some(today());
        assert_eq!(check(expired, false, READ).err(), Some(AuthError::Expired));
        let mut tomorrow = token("api", false, UserState::Active);
        tomorrow.expires_at = today().succ_opt();
        assert!(check(tomorrow, false, READ).is_ok());
    }

    #[test]
    fn scopes_fit_what_the_request_does() {
        let read_api = || token("read_api", false, UserState::Active);
        assert!(check(read_api(), false, READ).is_ok_and(|p| !p.can_write));
        assert_eq!(
            check(read_api(), false, Need::Write).err(),
            Some(AuthError::InsufficientScope("api"))
        );
        let read_user = || token("read_user", false, UserState::Active);
        assert_eq!(
            check(read_user(), false, READ).err(),
            Some(AuthError::InsufficientScope("api read_api"))
        );
        let profile = Need::Read(&[Scope::ReadApi, Scope::ReadUser]);
        assert!(check(read_user(), false, profile).is_ok());
        let self_rotation = Need::WriteWith {
            scopes: &[Scope::SelfRotate],
            names: "api self_rotate",
        };
        assert!(check(
            token("self_rotate", false, UserState::Active),
            false,
            self_rotation
        )
        .is_ok_and(|p| !p.can_write));
        assert_eq!(
            check(read_api(), false, self_rotation).err(),
            Some(AuthError::InsufficientScope("api self_rotate"))
        );
        assert!(
            check(token("api", false, UserState::Active), false, Need::Write)
                .is_ok_and(|p| p.can_write)
        );
    }

    #[test]
    fn only_active_accounts_pass() {
        for state in UserState::ALL {
            let outcome = check(token("api", false, state), false, READ);
            match state {
                UserState::Active => assert!(outcome.is_ok()),
                _ => assert_eq!(outcome.err(), Some(AuthError::Account(state))),
            }
        }
    }

    #[test]
    fn admin_rights_need_admin_mode_where_it_is_on() {
        let admin = |scopes| token(scopes, true, UserState::Active);
        assert!(check(admin("api"), false, READ).is_ok_and(|p| p.admin));
        assert!(check(admin("api"), true, READ).is_ok_and(|p| !p.admin));
        assert!(check(admin("api admin_mode"), true, READ).is_ok_and(|p| p.admin));
        let user = token("api admin_mode", false, UserState::Active);
        assert!(check(user, true, READ).is_ok_and(|p| !p.admin));
    }
}
