//! gitlab-license-server: GitLab's license and seat APIs, self-hosted.

pub mod cli;
pub mod license_key;
