package eventstore

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxStreamNameLength bounds a stream name in bytes.
const MaxStreamNameLength = 256

// ValidateAppend checks a stream name and a batch before any adapter touches storage, so every
// adapter refuses the same input with the same ErrInvalidEvent or ErrDuplicateEventID.
func ValidateAppend(stream string, events []EventData) error {
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events to append to %q", ErrInvalidEvent, stream)
	}
	seen := make(map[uuid.UUID]struct{}, len(events))
	size := 0
	for i, e := range events {
		if e.ID == uuid.Nil {
			return fmt.Errorf("%w: event %d of %q has no id", ErrInvalidEvent, i, stream)
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: event %d of %q repeats id %s within the batch", ErrDuplicateEventID, i, stream, e.ID)
		}
		seen[e.ID] = struct{}{}
		if e.Type == "" || len(e.Type) > 256 || !utf8.ValidString(e.Type) {
			return fmt.Errorf("%w: event %d of %q: type must be 1..256 bytes of UTF-8", ErrInvalidEvent, i, stream)
		}
		if e.Type[0] == '$' {
			// KurrentDB reserves "$" types for its own events, and $all readers (ours included)
			// skip them: such an event would be stored but never reach a projection.
			return fmt.Errorf("%w: event %d of %q: type %q starts with $, reserved for system events", ErrInvalidEvent, i, stream, e.Type)
		}
		if !json.Valid(e.Data) {
			return fmt.Errorf("%w: event %d (%s) of %q: data is not valid JSON", ErrInvalidEvent, i, e.Type, stream)
		}
		size += AppendSize(e)
	}
	if size > MaxAppendSize {
		return fmt.Errorf("%w: the %d events for %q come to %d bytes (data, metadata and type twice, plus %d per event), over the %d byte limit of one append",
			ErrInvalidEvent, len(events), stream, size, EventOverhead, MaxAppendSize)
	}
	return nil
}

// ValidateStreamName refuses names no adapter can store alike: empty, too long, not UTF-8,
// with control characters, or starting with "$" (KurrentDB's system streams).
func ValidateStreamName(stream string) error {
	if stream == "" || len(stream) > MaxStreamNameLength || !utf8.ValidString(stream) {
		return fmt.Errorf("%w: stream name must be 1..%d bytes of UTF-8", ErrInvalidEvent, MaxStreamNameLength)
	}
	if stream[0] == '$' {
		return fmt.Errorf("%w: stream name %q starts with $, reserved for system streams", ErrInvalidEvent, stream)
	}
	for _, r := range stream {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: stream name %q has a control character", ErrInvalidEvent, stream)
		}
	}
	return nil
}
