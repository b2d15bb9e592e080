//! Conditional access (product brief section 5): Graph `conditionalAccessPolicy` documents
//! compiled into an index by app, and the pure per-request evaluation.

/// The compiled conditional-access policy set (placeholder until the access issue lands).
#[derive(Debug, Default)]
pub struct PolicySet {}

impl PolicySet {
    pub fn empty() -> Self {
        Self::default()
    }
}
