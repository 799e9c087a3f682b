//! The subscription web page (GitLab's Admin → Subscription), served by the binary itself:
//! server-rendered HTML, no JavaScript, every action a form guarded by a CSRF token. It calls
//! the same services as the API, so a license or seat change follows the same rules.

mod chart;
mod fleet_pages;
mod fleet_views;
mod pages;
mod response;
mod scim_pages;
mod scim_views;
mod seat_control_pages;
mod seat_control_views;
mod seat_pages;
mod seat_views;
mod seats;
pub mod session;
mod true_up_pages;
mod true_up_views;
mod views;

use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to(session::PAGE_PATH) }))
        .route(
            session::SIGN_IN_PATH,
            get(pages::sign_in_form).post(pages::sign_in),
        )
        .route("/admin/sign_out", post(pages::sign_out))
        .route(session::PAGE_PATH, get(pages::show))
        .route(chart::PEAK_PATH, get(true_up_pages::peak))
        .route("/admin/subscription/licenses", post(pages::upload_license))
        .route(
            "/admin/subscription/licenses/check",
            post(pages::check_license),
        )
        .route(
            "/admin/subscription/licenses/{id}/delete",
            post(pages::delete_license),
        )
        .route(
            "/admin/subscription/refresh_billable_users",
            post(pages::refresh_billable_users),
        )
        .route(
            "/admin/subscription/usage_export.csv",
            get(pages::usage_export),
        )
        .route(
            "/admin/subscription/add_ons/{id}/assign",
            post(seats::assign_seats),
        )
        .route(
            "/admin/subscription/add_ons/{id}/unassign",
            post(seats::unassign_seats),
        )
        .route(
            "/admin/subscription/add_on_purchases",
            post(seats::save_group_purchase),
        )
        .route("/admin/seats", get(seat_pages::show))
        .route(
            "/admin/seats/duo/assign",
            post(seat_pages::assign_duo_seats),
        )
        .route(
            "/admin/seats/groups/{group}/billable_members/{user_id}/remove",
            post(seat_pages::remove_billable_member),
        )
        .route(
            "/admin/seats/duo/reclaim",
            post(seat_pages::reclaim_duo_seats),
        )
        .route(
            "/admin/seats/billable_users.csv",
            get(seat_pages::billable_users_csv),
        )
        .route("/admin/fleet", get(fleet_pages::show))
        .route("/admin/fleet/instances", post(fleet_pages::add_instance))
        .route(
            "/admin/fleet/instances/{id}/sync",
            post(fleet_pages::sync_instance),
        )
        .route(
            "/admin/fleet/instances/{id}/remove",
            post(fleet_pages::remove_instance),
        )
        .route("/admin/fleet/imports", post(fleet_pages::import))
        .route("/admin/fleet/people.csv", get(fleet_pages::people_csv))
        .route("/admin/scim", get(scim_pages::show))
        .route("/admin/scim/token", post(scim_pages::generate_token))
        .route("/admin/scim/token/reset", post(scim_pages::reset_token))
        .route("/admin/scim/groups/{id}/link", post(scim_pages::link_group))
        .route(
            "/admin/scim/groups/{id}/unlink",
            post(scim_pages::unlink_group),
        )
        .route(
            seat_control_views::SEAT_CONTROLS_PATH,
            get(seat_control_pages::show),
        )
        .route(
            seat_control_views::SEAT_CONTROL_FORM_PATH,
            post(seat_control_pages::save_seat_control),
        )
        .route(
            seat_control_views::EXCLUSIONS_FORM_PATH,
            post(seat_control_pages::save_exclusions),
        )
        .route("/admin/assets/subscription.css", get(pages::stylesheet))
}
