//! The kinds and states of background jobs, as the `jobs` table names them.

/// What a queued job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Counts billable users and stores a measurement (GitLab's usage-trends counter job).
    Recount,
    /// Snapshots the latest count into `historical_data` (GitLab's `HistoricalDataWorker`).
    History,
    /// Re-provisions license add-ons and frees seats of users who may no longer hold them
    /// (GitLab's `RefreshUserAssignmentsWorker` and overage reconciliation).
    SeatRefresh,
    /// Reads one fleet instance's users and license through its REST API (the job's
    /// `subject_id` names the instance).
    FleetSync,
    /// Deactivates dormant users (GitLab's `Users::DeactivateDormantUsersWorker`).
    DormantUsers,
}

impl JobKind {
    pub const ALL: [Self; 5] = [
        Self::Recount,
        Self::History,
        Self::SeatRefresh,
        Self::FleetSync,
        Self::DormantUsers,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Recount => "billable_users_count",
            Self::History => "historical_data",
            Self::SeatRefresh => "add_on_seats_refresh",
            Self::FleetSync => "fleet_sync",
            Self::DormantUsers => "users_deactivate_dormant_users",
        }
    }

    /// The kind a stored name means, if this build knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Where a job is in its life (`jobs.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for `run_at` (new, or given back after a failure).
    Pending,
    /// Claimed by a worker until its lease ends.
    Running,
    Done,
    /// Gave up after its last attempt.
    Failed,
}

impl JobState {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Running, Self::Done, Self::Failed];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// The stored value; a state this build does not know reads as failed (never run again).
impl From<String> for JobState {
    fn from(stored: String) -> Self {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == stored)
            .unwrap_or(Self::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::{JobKind, JobState};

    #[test]
    fn every_state_reads_back_from_its_name() {
        for state in JobState::ALL {
            assert_eq!(JobState::from(state.as_str().to_string()), state);
        }
        assert_eq!(JobState::from("lost".to_string()), JobState::Failed);
    }

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::from_name("nope"), None);
    }
}
