// Package privacy keeps customers' personal data out of the log in plaintext, so that it can be
// forgotten without rewriting history (crypto-shredding).
//
// Data flows through it at the boundary between the domain and the event store: Store wraps an
// eventstore.Store, seals the personal fields of each event (domain.PersonalFields) with the
// data key of the customer they concern before the append, and opens them after every read. The
// domain sees plaintext and no key; the adapters see only ciphertext; hash chains, digests and
// exports cover the sealed bytes. Each customer's data key is AES-256-GCM, kept in a table
// beside the log (privacy_keys, in the same database as the event store) wrapped by a master
// key that lives in a file outside it. Erasing a customer destroys their data key: every sealed
// field of theirs then opens as null, on every read, rebuild and replay, and the log's bytes
// and hashes stay as they were.
package privacy
