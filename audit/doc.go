// Package audit is what an auditor runs against the event store: it verifies the hash chain of
// every stream, takes and checks digests of the log, and exports and imports the log as JSON
// lines with every hash kept. It works through the eventstore.Store port only, so it runs the
// same on every adapter; docs/audit.md is the user's guide.
//
// # Verification
//
// Verify reads the log in global order and checks each event against the previous event of
// its stream: version 0 opens a stream and chains to 32 zero bytes, each next event has
// exactly the previous version plus one, and the stored hash equals eventstore.Hash recomputed
// from the event's fields and the previous event's stored hash. The first event that breaks
// one of these is reported (Failure), naming its stream, version and position.
//
// A hash chain alone cannot show that events were removed from the end of a stream: what is
// left still chains. A digest taken earlier does show it.
//
// # Digest
//
// A digest commits to the log up to a position P (TakeDigest uses the head). Its compact form
// is
//
//	oldigest1:<P>:<streams>:<events>:<root as 64 lowercase hex digits>
//
// where P is "<commit>-<prepare>" (eventstore.Position), streams and events count the streams
// and events at or before P, and the root is computed from every stream's head at P, its last
// version v and that event's stored hash h (all numbers big-endian, ‖ is concatenation):
//
//	leaf  = SHA-256("orderledger/digest/leaf/v1" ‖ uint32 byte length of the stream name ‖
//	                stream name in UTF-8 ‖ uint64 v ‖ h)
//	node  = SHA-256("orderledger/digest/node/v1" ‖ left ‖ right)
//	empty = SHA-256("orderledger/digest/empty/v1"), the root of a log with no event
//
// The leaves are sorted by the bytes of their stream names (plain byte order, no collation).
// Level by level, left to right, each pair of nodes becomes node(left, right); when a level
// has an odd number of nodes its last node is carried up to the next level unchanged (no
// padding leaf is added). The single node left is the root; a log of one stream has its leaf
// as root. This is RFC 6962's Merkle tree hash with the tags above instead of its 0x00 and
// 0x01 prefixes.
//
// Because each head hash chains over every earlier event of its stream, altering, removing or
// adding any event at or before P changes the counts or the root; events appended after P do
// not. DigestAt recomputes a digest at an earlier digest's position so the two can be compared.
// HeadsAt also returns the leaves' heads; kept beside a digest (RootOf proves they are its
// own), they let DiffHeads name the streams that changed.
//
// # Export and import
//
// Export writes the log as JSON lines (see Export for the format); Import appends such lines
// into an empty store with their ids, versions and recorded times, so that the target
// recomputes the same hashes, and checks that it did.
package audit
