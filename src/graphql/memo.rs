//! Lookups shared by the fields of one operation: a hundred aliases of `addOnPurchases`, or
//! the same user reached along several paths, read the store once. Each operation of a batch
//! has its own memo, so a query after a mutation in the same batch sees the mutation's effect.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::store::{StoreError, StoreResult};

/// What was looked up. Each key always holds the same type of value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemoKey {
    /// The purchases the caller may see in a namespace (`None`: the instance).
    VisiblePurchases(Option<i64>),
    /// A user by id.
    User(i64),
    /// A user by username (as given).
    Username(String),
    /// A group the caller may see, by full path or id.
    VisibleGroup(String),
    /// Whether the caller owns a group.
    OwnsGroup(i64),
    /// A user's seats among some purchases.
    UserSeats(i64, Vec<i64>),
}

type Shared = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
pub struct Memo {
    cells: Mutex<HashMap<MemoKey, Arc<OnceCell<Shared>>>>,
}

impl Memo {
    /// The value under `key`, loading it with `load` the first time (concurrent callers wait
    /// for the one load). A failed load is not kept: the next caller tries again.
    pub async fn get<T, F, Fut>(&self, key: MemoKey, load: F) -> StoreResult<Arc<T>>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let cell = {
            let mut cells = self
                .cells
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(cells.entry(key).or_default())
        };
        let value = cell
            .get_or_try_init(|| async { load().await.map(|value| Arc::new(value) as Shared) })
            .await?;
        Arc::clone(value)
            .downcast::<T>()
            .map_err(|_| StoreError::Conflict("a memo key held another type".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn one_load_per_key() {
        let memo = Memo::default();
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, StoreError>(7_i64)
        };
        let (a, b) = tokio::join!(
            memo.get(MemoKey::User(1), load),
            memo.get(MemoKey::User(1), load)
        );
        assert_eq!((*a.expect("a"), *b.expect("b")), (7, 7));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let other = memo.get(MemoKey::User(2), load).await.expect("other");
        assert_eq!(*other, 7);
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_not_kept() {
        let memo = Memo::default();
        let failed = memo
            .get(MemoKey::User(1), || async {
                Err::<i64, _>(StoreError::NotFound("user"))
            })
            .await;
        assert!(failed.is_err());
        let value = memo
            .get(MemoKey::User(1), || async { Ok::<_, StoreError>(3_i64) })
            .await
            .expect("retried");
        assert_eq!(*value, 3);
    }
}
