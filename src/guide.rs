// The operations guide is `docs/operations.md`, one file read on GitHub (from
// the README) and here on docs.rs. Its links are reference-style: the file ends
// with docs.rs addresses for every label, which GitHub uses. The definitions
// below come first, and the first definition of a label wins, so rustdoc uses
// these intra-doc paths instead (checked, and pointing at this version) for
// every item the build has; an item behind a feature the build lacks keeps the
// docs.rs address. Each label defined here must be defined in the file too
// (a test below checks both lists).
#![doc = "
[`DeadLetter`]: crate::handler::DeadLetter
[`HandlerRetryPolicy`]: crate::handler::HandlerRetryPolicy
"]
#![cfg_attr(
    feature = "listener",
    doc = "
[`DeliveryMode::Inline`]: crate::listener::DeliveryMode::Inline
[`DeliveryMode::durable`]: crate::listener::DeliveryMode::durable
[`DeliveryMode::queued`]: crate::listener::DeliveryMode::queued
[`JournalDir`]: crate::journal::JournalDir
[`ListenerStats`]: crate::listener::ListenerStats
[`ShutdownHandle`]: crate::listener::ShutdownHandle
[`WebhookListener`]: crate::listener::server::WebhookListener
[`WebhookListenerBuilder`]: crate::listener::WebhookListenerBuilder
[`WebhookListenerBuilder::dedupe`]: crate::listener::WebhookListenerBuilder::dedupe
[`WebhookListenerBuilder::delivery_mode`]: crate::listener::WebhookListenerBuilder::delivery_mode
[`WebhookListenerBuilder::drain_timeout`]: crate::listener::WebhookListenerBuilder::drain_timeout
[`WebhookListenerBuilder::handler_threads`]: crate::listener::WebhookListenerBuilder::handler_threads
[`WebhookListenerBuilder::on_dead_letter`]: crate::listener::WebhookListenerBuilder::on_dead_letter
[`WebhookListenerBuilder::trusted_proxies`]: crate::listener::WebhookListenerBuilder::trusted_proxies
[journal module]: crate::journal
"
)]
#![cfg_attr(
    feature = "metrics",
    doc = "
[`WebhookListenerBuilder::metrics`]: crate::listener::WebhookListenerBuilder::metrics
"
)]
#![cfg_attr(
    feature = "tls",
    doc = "
[`WebhookListenerBuilder::tls`]: crate::listener::WebhookListenerBuilder::tls
"
)]
#![cfg_attr(
    all(feature = "listener", feature = "redis"),
    doc = "
[`WebhookListener::redis_builder`]: crate::listener::server::WebhookListener::redis_builder
"
)]
#![cfg_attr(
    feature = "redis",
    doc = "
[`RedisAppenderOptions`]: crate::redis::RedisAppenderOptions
[`RedisDeadLetters`]: crate::redis::RedisDeadLetters
[`RedisWorker`]: crate::redis::RedisWorker
[redis module]: crate::redis
"
)]
#![doc = include_str!("../docs/operations.md")]

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    const GUIDE: &str = include_str!("../docs/operations.md");
    const README: &str = include_str!("../README.md");
    const THIS_FILE: &str = include_str!("guide.rs");

    /// The link definitions of `text` whose target starts with `prefix`: label → target.
    fn definitions<'a>(text: &'a str, prefix: &str) -> BTreeMap<&'a str, &'a str> {
        text.lines()
            .filter_map(|line| line.strip_prefix('['))
            .filter_map(|line| line.split_once("]: "))
            .filter(|(_, target)| target.starts_with(prefix))
            .collect()
    }

    #[test]
    fn every_intra_doc_link_of_the_guide_has_a_docs_rs_address_in_the_file() {
        let intra = definitions(THIS_FILE, "crate::");
        let docs_rs = definitions(GUIDE, "https://docs.rs/wasenderapi/latest/wasenderapi/");
        assert!(!intra.is_empty());
        assert_eq!(
            intra.keys().collect::<Vec<_>>(),
            docs_rs.keys().collect::<Vec<_>>(),
            "the labels defined in src/guide.rs and at the end of docs/operations.md"
        );
        for (label, path) in intra {
            // The item's own name ends both addresses (`…/struct.Name.html`,
            // `…#method.name`, `…/name/index.html`).
            let name = path.rsplit("::").next().unwrap_or(path);
            assert!(
                docs_rs[label].contains(&format!(".{name}"))
                    || docs_rs[label].contains(&format!("/{name}/")),
                "{label}: {path} and {}",
                docs_rs[label]
            );
        }
    }

    /// The rows of the table between the limits-table markers of `text`.
    fn limits_table(text: &str) -> Vec<&str> {
        let start = text.find("<!-- limits table").expect("the start marker");
        let end = text
            .find("<!-- end of limits table -->")
            .expect("the end marker");
        text[start..end]
            .lines()
            .filter(|line| line.starts_with('|'))
            .collect()
    }

    #[test]
    fn the_readme_states_the_same_default_limits_as_the_guide() {
        let guide = limits_table(GUIDE);
        assert!(guide.len() > 10, "{guide:?}");
        assert_eq!(limits_table(README), guide);
    }
}
