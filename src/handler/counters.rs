//! The one way the runtime keeps counters: a `counters!` declaration names
//! each counter once and gets a public snapshot struct of `u64`s (what
//! `stats()` returns) and the live atomic counters behind it, whose
//! `snapshot()` copies every field, so that no counter can be forgotten in
//! a hand-written copy.

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares `pub struct $stats` (a `Copy` snapshot, `#[non_exhaustive]`,
/// one documented `u64` per counter) and `pub(crate) struct $live` (one
/// `AtomicU64` per counter, with `snapshot()`).
#[cfg_attr(not(feature = "redis"), allow(unused_macros))]
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $stats:ident / $live:ident {
            $( $(#[$field_meta:meta])* $field:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $stats {
            $( $(#[$field_meta])* pub $field: u64, )*
        }

        /// One line for logs: every counter that is not zero, as `name n`
        /// (underscores read as spaces), or `nothing counted`.
        impl ::std::fmt::Display for $stats {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut first = true;
                $(
                    if self.$field != 0 {
                        let sep = if first { "" } else { ", " };
                        first = false;
                        write!(f, "{sep}{} {}", stringify!($field).replace('_', " "), self.$field)?;
                    }
                )*
                if first {
                    f.write_str("nothing counted")?;
                }
                Ok(())
            }
        }

        #[doc = concat!("The live counters behind [`", stringify!($stats), "`].")]
        #[derive(Debug, Default)]
        pub(crate) struct $live {
            $( pub(crate) $field: ::std::sync::atomic::AtomicU64, )*
        }

        impl $live {
            /// Every counter as it is now.
            pub(crate) fn snapshot(&self) -> $stats {
                $stats {
                    $( $field: self.$field.load(::std::sync::atomic::Ordering::Relaxed), )*
                }
            }
        }
    };
}
#[cfg_attr(not(feature = "redis"), allow(unused_imports))]
pub(crate) use counters;

/// Adds `n` to `counter`.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Takes `n` from the gauge `counter`.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    counters! {
        /// Test counters.
        pub struct TestStats / TestCounters {
            /// One.
            one,
            /// Two.
            two,
        }
    }

    #[test]
    fn the_log_line_names_what_is_not_zero() {
        assert_eq!(TestStats::default().to_string(), "nothing counted");
        let stats = TestStats { one: 0, two: 3 };
        assert_eq!(stats.to_string(), "two 3");
        let stats = TestStats { one: 1, two: 2 };
        assert_eq!(stats.to_string(), "one 1, two 2");
    }

    #[test]
    fn a_snapshot_copies_every_counter() {
        let live = TestCounters::default();
        add(&live.one, 3);
        add(&live.two, 5);
        sub(&live.two, 1);
        assert_eq!(live.snapshot(), TestStats { one: 3, two: 4 });
    }
}
