//! GitLab's rate limits, as rules: which throttle a request falls under (Rack::Attack's
//! `throttle_authenticated_api` per user and `throttle_unauthenticated_api` per IP, off by
//! default; the application limit on `GET /users/:id`, 300 per 10 minutes per user), the fixed
//! windows they count in, and what a throttled answer says (`lib/gitlab/rack_attack.rb`'s
//! `throttled_response_headers`). Pure: the caller brings the settings, the requester and the
//! time.

use chrono::{DateTime, Utc};

use crate::domain::settings::Settings;

/// One limit: at most `limit` requests per `period_seconds`, counted in fixed windows that
/// start at multiples of the period since the Unix epoch (as Rack::Attack counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// GitLab's name (`RateLimit-Name`).
    pub name: &'static str,
    pub limit: i64,
    pub period_seconds: i64,
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// A valid token's user.
    User { id: i64, admin: bool },
    /// No token, or one that does not authenticate: counted by address.
    Address(std::net::IpAddr),
}

/// What a limit counts on: a user, or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    User(i64),
    Address(std::net::IpAddr),
}

/// A counter's key: the limit's name and what it counts on (GitLab's
/// `<throttle>:<discriminator>`), shown as `throttle_authenticated_api:user:7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub name: &'static str,
    pub subject: Subject,
}

impl std::fmt::Display for CounterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.subject {
            Subject::User(id) => write!(formatter, "{}:user:{id}", self.name),
            Subject::Address(address) => write!(formatter, "{}:ip:{address}", self.name),
        }
    }
}

pub const AUTHENTICATED_API: &str = "throttle_authenticated_api";
pub const UNAUTHENTICATED_API: &str = "throttle_unauthenticated_api";
pub const USERS_GET_BY_ID: &str = "users_get_by_id";
/// `users_get_by_id`'s window (`interval: 10.minutes`).
pub const USERS_GET_BY_ID_PERIOD_SECONDS: i64 = 600;

/// Whether any limit can apply to an API request at all (the hot path's one question when
/// every throttle is off). `GET /users/:id`'s limit is on by default, but only that route
/// asks for it.
pub fn api_throttles_on(settings: &Settings) -> bool {
    settings.throttle_authenticated_api_enabled || settings.throttle_unauthenticated_api_enabled
}

/// The Rack::Attack throttle an API request falls under, and the key it counts on.
pub fn api_throttle(settings: &Settings, requester: &Requester) -> Option<(Limit, CounterKey)> {
    match requester {
        Requester::User { id, .. } if settings.throttle_authenticated_api_enabled => Some((
            Limit {
                name: AUTHENTICATED_API,
                limit: settings.throttle_authenticated_api_requests_per_period,
                period_seconds: settings.throttle_authenticated_api_period_in_seconds,
            },
            CounterKey {
                name: AUTHENTICATED_API,
                subject: Subject::User(*id),
            },
        )),
        Requester::Address(address) if settings.throttle_unauthenticated_api_enabled => Some((
            Limit {
                name: UNAUTHENTICATED_API,
                limit: settings.throttle_unauthenticated_api_requests_per_period,
                period_seconds: settings.throttle_unauthenticated_api_period_in_seconds,
            },
            CounterKey {
                name: UNAUTHENTICATED_API,
                subject: Subject::Address(*address),
            },
        )),
        _ => None,
    }
}

/// `GET /users/:id`'s application limit for this caller, if any: not for administrators
/// (`can_read_all_resources?`), not for usernames on the allowlist, not when set to 0.
pub fn users_get_by_id_limit(
    settings: &Settings,
    user_id: i64,
    username: &str,
    admin: bool,
) -> Option<(Limit, CounterKey)> {
    let exempt = admin
        || settings.users_get_by_id_limit <= 0
        || settings
            .users_get_by_id_limit_allowlist
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(username));
    (!exempt).then_some((
        Limit {
            name: USERS_GET_BY_ID,
            limit: settings.users_get_by_id_limit,
            period_seconds: USERS_GET_BY_ID_PERIOD_SECONDS,
        },
        CounterKey {
            name: USERS_GET_BY_ID,
            subject: Subject::User(user_id),
        },
    ))
}

/// The window `now` falls in: its start and end, in Unix seconds.
pub fn window(period_seconds: i64, now: DateTime<Utc>) -> (i64, i64) {
    let period = period_seconds.max(1);
    let seconds = now.timestamp();
    let start = seconds - seconds.rem_euclid(period);
    (start, start.saturating_add(period))
}

/// What a throttled answer carries (GitLab's `throttled_response_headers`), in its order.
pub fn throttled_headers(
    limit: &Limit,
    observed: i64,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let period = limit.period_seconds.max(1);
    let seconds = now.timestamp();
    let retry_after = period - seconds.rem_euclid(period);
    let reset = seconds.saturating_add(retry_after);
    // "RateLimit-Limit" is scaled to a 60-second window, rounded up, as GitLab shows it.
    let per_minute = (limit.limit.saturating_mul(60) + period - 1) / period;
    let reset_time = DateTime::<Utc>::from_timestamp(reset, 0)
        .map(|time| time.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default();
    vec![
        ("RateLimit-Name", limit.name.to_string()),
        ("RateLimit-Limit", per_minute.to_string()),
        ("RateLimit-Observed", observed.to_string()),
        (
            "RateLimit-Remaining",
            (limit.limit - observed).max(0).to_string(),
        ),
        ("RateLimit-Reset", reset.to_string()),
        ("RateLimit-ResetTime", reset_time),
        ("Retry-After", retry_after.to_string()),
    ]
}

/// GitLab's throttled body (`Gitlab::Throttle.rate_limiting_response_text`, the default).
pub const THROTTLED_BODY: &str = "Retry later\n";

/// The application limiter's refusal (`check_rate_limit!`), a JSON message with no headers.
pub const APPLICATION_LIMIT_MESSAGE: &str =
    "This endpoint has been requested too many times. Try again later.";

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn headers_are_gitlabs() {
        let limit = Limit {
            name: AUTHENTICATED_API,
            limit: 7200,
            period_seconds: 3600,
        };
        // 2021-01-05T08:05:30Z = 1609833930, as in GitLab's comment.
        let headers = throttled_headers(&limit, 7201, at("2021-01-05T08:05:30Z"));
        assert_eq!(
            headers,
            vec![
                ("RateLimit-Name", "throttle_authenticated_api".to_string()),
                ("RateLimit-Limit", "120".to_string()),
                ("RateLimit-Observed", "7201".to_string()),
                ("RateLimit-Remaining", "0".to_string()),
                ("RateLimit-Reset", "1609837200".to_string()),
                (
                    "RateLimit-ResetTime",
                    "Tue, 05 Jan 2021 09:00:00 GMT".to_string()
                ),
                ("Retry-After", "3270".to_string()),
            ]
        );
        let odd = Limit {
            limit: 5,
            period_seconds: 7,
            ..limit
        };
        // ceil(5 * 60 / 7) = 43.
        assert_eq!(
            throttled_headers(&odd, 1, at("2021-01-05T08:05:30Z"))[1].1,
            "43"
        );
    }

    #[test]
    fn windows_start_at_multiples_of_the_period() {
        assert_eq!(
            window(3600, at("2021-01-05T08:05:30Z")),
            (1609833600, 1609837200)
        );
        assert_eq!(
            window(0, at("2021-01-05T08:05:30Z")).1 - window(0, at("2021-01-05T08:05:30Z")).0,
            1
        );
    }

    #[test]
    fn which_throttle_applies() {
        let mut settings = Settings::default();
        let user = Requester::User {
            id: 7,
            admin: false,
        };
        let address = Requester::Address("192.0.2.1".parse().expect("ip"));
        assert!(!api_throttles_on(&settings), "off by default, as GitLab");
        assert_eq!(api_throttle(&settings, &user), None);
        settings.throttle_unauthenticated_api_enabled = true;
        assert_eq!(api_throttle(&settings, &user), None);
        let (limit, key) = api_throttle(&settings, &address).expect("per address");
        assert_eq!((limit.limit, limit.period_seconds), (3600, 3600));
        assert_eq!(key.to_string(), "throttle_unauthenticated_api:ip:192.0.2.1");
        settings.throttle_authenticated_api_enabled = true;
        assert_eq!(
            api_throttle(&settings, &user).map(|(limit, key)| (limit.limit, key.to_string())),
            Some((7200, "throttle_authenticated_api:user:7".to_string()))
        );
        // GET /users/:id: 300 per 10 minutes for non-administrators off the allowlist.
        assert!(users_get_by_id_limit(&settings, 7, "ada", true).is_none());
        assert_eq!(
            users_get_by_id_limit(&settings, 7, "ada", false).map(|(limit, _)| limit.limit),
            Some(300)
        );
        settings.users_get_by_id_limit_allowlist = vec!["Ada".into()];
        assert!(users_get_by_id_limit(&settings, 7, "ada", false).is_none());
        settings.users_get_by_id_limit = 0;
        assert!(users_get_by_id_limit(&settings, 8, "bob", false).is_none());
    }
}
