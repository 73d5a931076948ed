//! What a finished call counts as: the one classifier type every call path
//! accepts.

use crate::outcome::Classification;

/// Decides what a call's result counts as.
///
/// Every path takes the same classifier: [`ProtectedCall::classify`](crate::circuit::ProtectedCall::classify)
/// (and so the manager's [`Call::protected`](crate::manager::Call::protected)),
/// [`CircuitHandle::call_with`](crate::circuit::CircuitHandle::call_with) and
/// [`Permit::record_with`](crate::circuit::Permit::record_with). Any
/// `Fn(&Result<T, E>) -> Classification` is one; [`OkIsSuccess`], the
/// default, says `Ok` is a success and `Err` a failure.
///
/// ```
/// use vibezen_recovery::classifier::Classifier;
/// use vibezen_recovery::outcome::Classification;
///
/// let not_found_is_no_outage = |result: &Result<u32, String>| match result {
///     Err(e) if e.starts_with("404") => Classification::Ignored,
///     Err(_) => Classification::Failure,
///     Ok(_) => Classification::Success,
/// };
/// assert_eq!(not_found_is_no_outage.classify(&Err("404".into())), Classification::Ignored);
/// ```
pub trait Classifier<T, E> {
    /// What `result` counts as.
    fn classify(&self, result: &Result<T, E>) -> Classification;
}

impl<T, E, F> Classifier<T, E> for F
where
    F: Fn(&Result<T, E>) -> Classification,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Classification {
        self(result)
    }
}

/// The default classifier: `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkIsSuccess;

impl<T, E> Classifier<T, E> for OkIsSuccess {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Classification {
        Classification::of_result(result)
    }
}
