package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/orderledger/orderledger/eventstore"
)

// DigestPrefix starts every digest string and names its construction; a new construction
// would get a new prefix, never a new meaning for this one.
const DigestPrefix = "oldigest1"

// Domain tags of the digest's hashes: each SHA-256 input starts with one, so a leaf can never
// be read as a node, nor either as an event hash ("orderledger/event/v1").
const (
	leafTag  = "orderledger/digest/leaf/v1"
	nodeTag  = "orderledger/digest/node/v1"
	emptyTag = "orderledger/digest/empty/v1"
)

// Digest commits to the log up to a position: how many streams and events it holds and a
// Merkle root over the head (last version and its hash) of every stream. Since each head hash
// chains over every earlier event of its stream, the root changes if any event at or before
// Position is altered, removed or added. The package documentation gives the construction.
type Digest struct {
	Position eventstore.Position
	Streams  uint64
	Events   uint64
	Root     [sha256.Size]byte
}

// String is the compact form "oldigest1:<position>:<streams>:<events>:<root hex>".
func (d Digest) String() string {
	return fmt.Sprintf("%s:%s:%d:%d:%s", DigestPrefix, d.Position, d.Streams, d.Events, hex.EncodeToString(d.Root[:]))
}

// ParseDigest parses the form String produces.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 5 || parts[0] != DigestPrefix {
		return d, fmt.Errorf("digest %q: want %s:<position>:<streams>:<events>:<root hex>", s, DigestPrefix)
	}
	var err error
	if d.Position, err = eventstore.ParsePosition(parts[1]); err != nil {
		return d, fmt.Errorf("digest %q: %w", s, err)
	}
	if d.Streams, err = strconv.ParseUint(parts[2], 10, 64); err != nil {
		return d, fmt.Errorf("digest %q: stream count: %w", s, err)
	}
	if d.Events, err = strconv.ParseUint(parts[3], 10, 64); err != nil {
		return d, fmt.Errorf("digest %q: event count: %w", s, err)
	}
	root, err := hex.DecodeString(parts[4])
	if err != nil || len(root) != len(d.Root) {
		return d, fmt.Errorf("digest %q: root: want %d hex digits", s, 2*len(d.Root))
	}
	copy(d.Root[:], root)
	return d, nil
}

// Diff lists what differs between d, the digest expected, and got, the one recomputed; it is
// empty when they are equal.
func (d Digest) Diff(got Digest) []string {
	var diffs []string
	if d.Position != got.Position {
		diffs = append(diffs, fmt.Sprintf("position: digest %s, recomputed %s", d.Position, got.Position))
	}
	if d.Streams != got.Streams {
		diffs = append(diffs, fmt.Sprintf("streams: digest %d, the log now has %d", d.Streams, got.Streams))
	}
	if d.Events != got.Events {
		diffs = append(diffs, fmt.Sprintf("events: digest %d, the log now has %d", d.Events, got.Events))
	}
	if d.Root != got.Root {
		diffs = append(diffs, fmt.Sprintf("root: digest %x, recomputed %x", d.Root, got.Root))
	}
	return diffs
}

// TakeDigest verifies the log up to its current head and returns the digest of it. When a
// chain is broken the digest would vouch for a damaged log, so none is returned: the report
// names the failure and the Digest is the zero value.
func TakeDigest(ctx context.Context, store eventstore.Store, opts Options) (Digest, Report, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return Digest{}, Report{}, fmt.Errorf("audit: digest: %w", err)
	}
	return DigestAt(ctx, store, head, opts)
}

// DigestAt verifies the chains of every event at or before position and returns the digest
// of the log up to there, to compare with one taken earlier (Digest.Diff). Events appended
// after position do not change it.
func DigestAt(ctx context.Context, store eventstore.Store, position eventstore.Position, opts Options) (Digest, Report, error) {
	d, _, report, err := HeadsAt(ctx, store, position, opts)
	return d, report, err
}

// Head is a stream's last event at a digest's position: what one leaf of the digest's tree
// commits to.
type Head struct {
	Stream  string
	Version uint64
	Hash    eventstore.Hash
}

// HeadsAt is DigestAt that also returns the heads the digest commits to, in byte order of
// stream name. Kept beside the digest (WriteHeads), they let a later check name the streams
// whose heads changed (DiffHeads), which the root alone cannot; RootOf proves that a list of
// heads is the one a digest commits to, so the list can be stored anywhere.
func HeadsAt(ctx context.Context, store eventstore.Store, position eventstore.Position, opts Options) (Digest, []Head, Report, error) {
	if opts.Stream != "" {
		return Digest{}, nil, Report{}, errors.New("audit: a digest covers the whole log, not one stream")
	}
	c, err := scan(ctx, store, position, opts)
	if err != nil {
		return Digest{}, nil, Report{}, err
	}
	report := c.finish()
	if !report.OK {
		return Digest{}, nil, report, nil
	}
	heads := make([]Head, 0, len(c.heads))
	for name, head := range c.heads {
		heads = append(heads, Head{Stream: name, Version: head.version, Hash: head.hash})
	}
	slices.SortFunc(heads, func(a, b Head) int { return strings.Compare(a.Stream, b.Stream) })
	d := Digest{Position: position, Streams: report.Streams, Events: report.Events, Root: RootOf(heads)}
	return d, heads, report, nil
}

// RootOf is the Merkle root over heads, which must be in byte order of stream name.
func RootOf(heads []Head) [sha256.Size]byte {
	leaves := make([][sha256.Size]byte, len(heads))
	for i, h := range heads {
		leaves[i] = leafHash(h.Stream, h.Version, h.Hash)
	}
	return merkleRoot(leaves)
}

// DiffHeads names, in byte order of stream name, each stream whose head differs between want
// (at a digest) and got (now, at the digest's position). Both must be sorted as HeadsAt
// returns them.
func DiffHeads(want, got []Head) []string {
	var diffs []string
	for len(want) > 0 || len(got) > 0 {
		switch {
		case len(got) == 0 || len(want) > 0 && want[0].Stream < got[0].Stream:
			diffs = append(diffs, fmt.Sprintf("stream %q: version %d (hash %s) at the digest, no event now", want[0].Stream, want[0].Version, want[0].Hash))
			want = want[1:]
		case len(want) == 0 || got[0].Stream < want[0].Stream:
			diffs = append(diffs, fmt.Sprintf("stream %q: not in the digest, version %d (hash %s) now", got[0].Stream, got[0].Version, got[0].Hash))
			got = got[1:]
		default:
			if want[0] != got[0] {
				diffs = append(diffs, fmt.Sprintf("stream %q: version %d (hash %s) at the digest, version %d (hash %s) now",
					want[0].Stream, want[0].Version, want[0].Hash, got[0].Version, got[0].Hash))
			}
			want, got = want[1:], got[1:]
		}
	}
	return diffs
}

// WriteHeads writes heads one a line: version, hash in hex and stream name, separated by tabs
// (a stream name holds no control character).
func WriteHeads(w io.Writer, heads []Head) error {
	out := bufio.NewWriter(w)
	for _, h := range heads {
		if _, err := fmt.Fprintf(out, "%d\t%s\t%s\n", h.Version, h.Hash, h.Stream); err != nil {
			return err
		}
	}
	return out.Flush()
}

// ReadHeads reads what WriteHeads wrote.
func ReadHeads(r io.Reader) ([]Head, error) {
	var heads []Head
	lines := bufio.NewScanner(r)
	for n := 1; lines.Scan(); n++ {
		version, rest, ok1 := strings.Cut(lines.Text(), "\t")
		hash, stream, ok2 := strings.Cut(rest, "\t")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("heads line %d: want <version> TAB <hash> TAB <stream>", n)
		}
		h := Head{Stream: stream}
		var err error
		if h.Version, err = strconv.ParseUint(version, 10, 64); err != nil {
			return nil, fmt.Errorf("heads line %d: version: %w", n, err)
		}
		if h.Hash, err = eventstore.ParseHash(hash); err != nil {
			return nil, fmt.Errorf("heads line %d: %w", n, err)
		}
		heads = append(heads, h)
	}
	return heads, lines.Err()
}

// leafHash is SHA-256(leafTag ‖ len(stream) as 4 bytes big-endian ‖ stream ‖ version as
// 8 bytes big-endian ‖ head hash).
func leafHash(stream string, version uint64, head eventstore.Hash) [sha256.Size]byte {
	b := make([]byte, 0, len(leafTag)+4+len(stream)+8+len(head))
	b = append(b, leafTag...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(stream)))
	b = append(b, stream...)
	b = binary.BigEndian.AppendUint64(b, version)
	b = append(b, head[:]...)
	return sha256.Sum256(b)
}

// merkleRoot pairs nodes level by level, left to right, each pair becoming
// SHA-256(nodeTag ‖ left ‖ right); a level's last node without a partner is carried up
// unchanged. No padding leaf is invented, so no two leaf lists share a root by duplication
// (the flaw of Bitcoin's tree), and the result equals RFC 6962's Merkle tree hash with our tags.
// An empty list has the root SHA-256(emptyTag). It reuses leaves as scratch space.
func merkleRoot(leaves [][sha256.Size]byte) [sha256.Size]byte {
	if len(leaves) == 0 {
		return sha256.Sum256([]byte(emptyTag))
	}
	level := leaves
	buf := make([]byte, len(nodeTag)+2*sha256.Size)
	copy(buf, nodeTag)
	for len(level) > 1 {
		n := len(level)
		for i := 0; i+1 < n; i += 2 {
			copy(buf[len(nodeTag):], level[i][:])
			copy(buf[len(nodeTag)+sha256.Size:], level[i+1][:])
			level[i/2] = sha256.Sum256(buf)
		}
		if n%2 == 1 {
			level[n/2] = level[n-1]
		}
		level = level[:(n+1)/2]
	}
	return level[0]
}
