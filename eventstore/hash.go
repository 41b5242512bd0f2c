package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Hash is the SHA-256 of an event chained to the hash of the previous event of its stream.
//
// The bytes hashed for the event at version v of stream s are, in this order:
//
//	the 20 ASCII bytes "orderledger/event/v1"
//	prev      32 bytes: the hash of version v-1 of s; 32 zero bytes for version 0
//	version   8 bytes, big-endian unsigned
//	stream    4-byte big-endian length, then the UTF-8 bytes of the stream name
//	id        the 16 bytes of the event UUID (RFC 9562 byte order)
//	type      4-byte big-endian length, then the UTF-8 bytes of the type name
//	recorded  8 bytes, big-endian signed: microseconds since 1970-01-01T00:00:00Z
//	metadata  4-byte big-endian length, then the canonical metadata JSON (EncodeMetadata)
//	data      4-byte big-endian length, then the data bytes exactly as stored
//
// Position is deliberately not hashed: a log exported and imported into another store keeps
// every hash although positions change.
type Hash [32]byte

// hashDomain separates event hashes from any other SHA-256 use.
const hashDomain = "orderledger/event/v1"

// String is the lowercase hex form used in exports and the API.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero bytes (no previous event).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText and UnmarshalText make a Hash a hex JSON string.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

func (h *Hash) UnmarshalText(b []byte) error {
	parsed, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = parsed
	return nil
}

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("hash %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q: %w", s, err)
	}
	return h, nil
}

// EncodeMetadata is the canonical JSON of m: the fields in declaration order, empty ones left
// out. Adapters store these bytes and hash them.
func EncodeMetadata(m Metadata) []byte {
	b, err := json.Marshal(m)
	if err != nil { // a struct of strings always marshals
		panic(err)
	}
	return b
}

// DecodeMetadata parses stored metadata; empty input is empty metadata.
func DecodeMetadata(b []byte) (Metadata, error) {
	var m Metadata
	if len(b) == 0 {
		return m, nil
	}
	err := json.Unmarshal(b, &m)
	return m, err
}

// RecordedAtPrecision is the precision every adapter keeps; recorded times are truncated to it.
const RecordedAtPrecision = time.Microsecond

// NormalizeTime truncates t to RecordedAtPrecision in UTC, as stores keep it.
func NormalizeTime(t time.Time) time.Time { return t.UTC().Truncate(RecordedAtPrecision) }

// ComputeHash returns the hash of an event given the hash of the previous event of its stream.
func ComputeHash(prev Hash, stream string, version uint64, id uuid.UUID, eventType string, recordedAt time.Time, metadata Metadata, data []byte) Hash {
	return computeHash(prev, stream, version, id, eventType, recordedAt, EncodeMetadata(metadata), data)
}

func computeHash(prev Hash, stream string, version uint64, id uuid.UUID, eventType string, recordedAt time.Time, metadata, data []byte) Hash {
	h := sha256.New()
	var n [8]byte
	writeLen := func(l int) {
		binary.BigEndian.PutUint32(n[:4], uint32(l))
		h.Write(n[:4])
	}
	h.Write([]byte(hashDomain))
	h.Write(prev[:])
	binary.BigEndian.PutUint64(n[:], version)
	h.Write(n[:])
	writeLen(len(stream))
	h.Write([]byte(stream))
	h.Write(id[:])
	writeLen(len(eventType))
	h.Write([]byte(eventType))
	binary.BigEndian.PutUint64(n[:], uint64(recordedAt.UnixMicro()))
	h.Write(n[:])
	writeLen(len(metadata))
	h.Write(metadata)
	writeLen(len(data))
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Recompute returns the hash e should have after prev, from its stored fields.
func (e Event) Recompute(prev Hash) Hash {
	return ComputeHash(prev, e.Stream, e.Version, e.ID, e.Type, e.RecordedAt, e.Metadata, e.Data)
}
