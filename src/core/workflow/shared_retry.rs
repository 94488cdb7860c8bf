//! A task's retry policy shared between the specs that have the same one (issue 14,
//! memory): a policy is 40 bytes inline, a run holds a spec per task for its life, and
//! nearly every task of a workflow has the same policy (the built-in one, or
//! `[defaults] retry`): 250,000 copies were ~10 MB of a reader's peak, one pointer each
//! is 2 MB. It reads and writes as the policy itself (`*spec.retry`, `spec.retry.x`,
//! `spec.retry.x = y` copies on write) and its serde shape is the policy's.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RetryPolicy;

/// A retry policy behind a shared pointer; equal policies made on one thread share one
/// allocation (see [`SharedRetry::new`]).
#[derive(Clone)]
pub struct SharedRetry(Arc<RetryPolicy>);

/// The built-in policy, once for the process.
static USUAL: LazyLock<Arc<RetryPolicy>> = LazyLock::new(|| Arc::new(RetryPolicy::default()));

thread_local! {
    /// The last other policy made on this thread: a workflow's `[defaults] retry`
    /// (every task of a file in a row), or a log's or snapshot's specs read in a row.
    static LAST: RefCell<Option<Arc<RetryPolicy>>> = const { RefCell::new(None) };
}

impl SharedRetry {
    /// `policy`, sharing the built-in one's allocation or the last one made on this
    /// thread when it is equal to either.
    pub fn new(policy: RetryPolicy) -> SharedRetry {
        if policy == **USUAL {
            return SharedRetry(Arc::clone(&USUAL));
        }
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            match last.as_ref() {
                Some(shared) if **shared == policy => SharedRetry(Arc::clone(shared)),
                _ => {
                    let shared = Arc::new(policy);
                    *last = Some(Arc::clone(&shared));
                    SharedRetry(shared)
                }
            }
        })
    }

    /// True when both share one allocation (for tests of the sharing).
    pub fn shares_with(&self, other: &SharedRetry) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for SharedRetry {
    fn default() -> SharedRetry {
        SharedRetry(Arc::clone(&USUAL))
    }
}

impl From<RetryPolicy> for SharedRetry {
    fn from(policy: RetryPolicy) -> SharedRetry {
        SharedRetry::new(policy)
    }
}

impl Deref for SharedRetry {
    type Target = RetryPolicy;

    fn deref(&self) -> &RetryPolicy {
        &self.0
    }
}

impl DerefMut for SharedRetry {
    /// This spec's own copy, made when another spec shares it (a test's or a check's
    /// edit of one task's policy leaves the others as they were).
    fn deref_mut(&mut self) -> &mut RetryPolicy {
        Arc::make_mut(&mut self.0)
    }
}

impl PartialEq for SharedRetry {
    fn eq(&self, other: &SharedRetry) -> bool {
        *self.0 == *other.0
    }
}

impl std::fmt::Debug for SharedRetry {
    /// As the policy itself (debug output of specs is unchanged).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for SharedRetry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedRetry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SharedRetry, D::Error> {
        RetryPolicy::deserialize(d).map(SharedRetry::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_policies_share_one_allocation_and_an_edit_copies() {
        let usual = SharedRetry::new(RetryPolicy::default());
        assert!(usual.shares_with(&SharedRetry::default()));
        let custom = RetryPolicy { max_attempts: 7, ..RetryPolicy::default() };
        let (a, b) = (SharedRetry::new(custom), SharedRetry::new(custom));
        assert!(a.shares_with(&b), "a run of equal policies shares one");
        let mut edited = a.clone();
        edited.max_attempts = 2;
        assert_eq!((a.max_attempts, b.max_attempts, edited.max_attempts), (7, 7, 2));
        assert!(!edited.shares_with(&a));
    }

    #[test]
    fn it_reads_and_writes_as_the_policy() {
        let text = r#"{"max_attempts":2,"initial_ms":10,"max_ms":100,"multiplier":2.0,"jitter":false}"#;
        let shared: SharedRetry = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&shared).unwrap(), text);
        let plain: RetryPolicy = serde_json::from_str(text).unwrap();
        assert_eq!(*shared, plain);
        assert_eq!(format!("{shared:?}"), format!("{plain:?}"));
    }

    #[test]
    fn a_pointer_in_a_spec() {
        assert_eq!(std::mem::size_of::<SharedRetry>(), 8);
    }
}
