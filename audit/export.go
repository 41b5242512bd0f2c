package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// RecordedAtLayout is how an export writes recorded_at: RFC 3339 in UTC with exactly six
// fractional digits, the precision every store keeps and the hash covers.
const RecordedAtLayout = "2006-01-02T15:04:05.000000Z07:00"

// ExportOptions tune Export.
type ExportOptions struct {
	// From: only events after this position are written; the zero Position writes the whole log.
	From eventstore.Position
	// BatchSize is how many events one read asks for; 0 means DefaultBatchSize.
	BatchSize int
	// Progress, when set, is called after every batch with the number of events written so far.
	Progress func(done uint64)
}

// ExportResult says what an export wrote.
type ExportResult struct {
	Events uint64
	// Position is the last position the export covers: the head of the log when it started.
	// An export continued later starts from here.
	Position eventstore.Position
}

// Export writes every event after opts.From and up to the head of the log when it starts to w,
// in global order, one JSON object per line:
//
//	{"id":"<uuid>","stream":"order-1","version":0,"type":"OrderPlaced.v1","data":{…},
//	 "metadata":{…},"recorded_at":"2025-01-02T03:04:05.123456Z","position":"<commit>-<prepare>",
//	 "hash":"<64 hex>"}
//
// data is the event's JSON exactly as stored, byte for byte, because the hash covers those
// bytes. A line cannot hold data that contains a line break or starts or ends with white space
// unchanged through a JSON parser, so such data is written as "data_base64" (standard
// encoding) instead of "data". metadata is the canonical metadata JSON the hash covers.
//
// Memory stays flat: events are read in batches and written as they come.
func Export(ctx context.Context, store eventstore.Store, w io.Writer, opts ExportOptions) (ExportResult, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return ExportResult{}, fmt.Errorf("audit: export: %w", err)
	}
	result := ExportResult{Position: opts.From}
	if head.Compare(opts.From) > 0 {
		result.Position = head
	}
	out := bufio.NewWriterSize(w, 256<<10)
	var line []byte
	err = readAll(ctx, store, opts.From, head, batchSizeOr(opts.BatchSize), func(events []eventstore.Event) error {
		for i := range events {
			line = appendExportLine(line[:0], &events[i])
			if _, err := out.Write(line); err != nil {
				return err
			}
		}
		result.Events += uint64(len(events))
		if opts.Progress != nil {
			opts.Progress(result.Events)
		}
		return nil
	})
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return result, fmt.Errorf("audit: export: %w", err)
	}
	return result, nil
}

func batchSizeOr(n int) int {
	if n > 0 {
		return n
	}
	return DefaultBatchSize
}

// appendExportLine appends e's export line to b. It is written by hand, not with
// encoding/json, because json.Marshal would compact and escape data, changing the bytes the
// hash covers.
func appendExportLine(b []byte, e *eventstore.Event) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, e.ID.String()...)
	b = append(b, `","stream":`...)
	b = appendJSONString(b, e.Stream)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, e.Version, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	if dataFitsLine(e.Data) {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	} else {
		b = append(b, `,"data_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Data)
		b = append(b, '"')
	}
	b = append(b, `,"metadata":`...)
	b = appendMetadata(b, e.Metadata)
	b = append(b, `,"recorded_at":"`...)
	b = appendRecordedAt(b, e.RecordedAt)
	b = append(b, `","position":"`...)
	b = strconv.AppendUint(b, e.Position.Commit, 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, e.Position.Prepare, 10)
	b = append(b, `","hash":"`...)
	b = hex.AppendEncode(b, e.Hash[:])
	return append(b, "\"}\n"...)
}

// dataFitsLine reports whether data survives a JSON line and a parser byte for byte: a parser
// hands back a value from its first to its last byte, and a line ends at a line break.
func dataFitsLine(data []byte) bool {
	if len(data) == 0 || isJSONSpace(data[0]) || isJSONSpace(data[len(data)-1]) {
		return false
	}
	return bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// appendJSONString appends s quoted exactly as encoding/json quotes it. Names and metadata
// rarely need escaping, so the common case skips encoding/json; any byte it would escape (or
// treat specially: HTML characters, anything beyond ASCII) hands the string to it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			quoted, _ := json.Marshal(s) // a string always marshals
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendMetadata appends eventstore.EncodeMetadata(m) without encoding/json's reflection,
// which took a third of an export's formatting: the fields in declaration order, empty ones
// left out.
func appendMetadata(b []byte, m eventstore.Metadata) []byte {
	b = append(b, '{')
	empty := true
	for _, f := range [...]struct{ name, value string }{
		{`"correlation_id":`, m.CorrelationID},
		{`"causation_id":`, m.CausationID},
		{`"idempotency_key":`, m.IdempotencyKey},
		{`"actor":`, m.Actor},
	} {
		if f.value == "" {
			continue
		}
		if !empty {
			b = append(b, ',')
		}
		empty = false
		b = append(b, f.name...)
		b = appendJSONString(b, f.value)
	}
	return append(b, '}')
}

// appendRecordedAt appends t in RecordedAtLayout. It writes the digits itself for the years
// RFC 3339 allows, because time.AppendFormat interprets its layout on every call.
func appendRecordedAt(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, RecordedAtLayout)
	}
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, second, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits appends v, which is at least 0, as exactly width decimal digits.
func appendDigits(b []byte, v, width int) []byte {
	var digits [8]byte
	for i := width - 1; i >= 0; i-- {
		digits[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, digits[:width]...)
}

// ErrNotEmpty is returned by Import when the target store already holds events.
var ErrNotEmpty = errors.New("audit: the event store is not empty")

// ImportOptions tune Import.
type ImportOptions struct {
	// Progress, when set, is called now and then with the number of events appended so far.
	Progress func(done uint64)
}

// ImportResult says what an import appended.
type ImportResult struct {
	Events uint64
	// Position is the position of the last event appended in the target store.
	Position eventstore.Position
}

// exportedEvent is one line of an export, as Import reads it.
type exportedEvent struct {
	ID         uuid.UUID           `json:"id"`
	Stream     string              `json:"stream"`
	Version    uint64              `json:"version"`
	Type       string              `json:"type"`
	Data       json.RawMessage     `json:"data"` // RawMessage keeps the bytes as they are
	DataBase64 []byte              `json:"data_base64"`
	Metadata   eventstore.Metadata `json:"metadata"`
	RecordedAt time.Time           `json:"recorded_at"`
	Position   eventstore.Position `json:"position"` // in the source store; the target has its own
	Hash       eventstore.Hash     `json:"hash"`
}

// importBatchEvents bounds one append during an import: a run of consecutive events of one
// stream goes in one append, cut at this many events or at eventstore.MaxAppendSize bytes.
const importBatchEvents = 1000

// readBackBatch is how many appended events Import lets pile up before it reads them back to
// compare their stored hashes with the exported ones; it keeps memory flat.
const readBackBatch = 8192

// Import reads an export (Export's JSON lines) from r and appends its events to store, which
// must be empty (ErrNotEmpty otherwise). Each event keeps its id and recorded_at and is
// appended at its exported version (expected revision version-1, or NoStream for version 0),
// so the store recomputes the very same hash chain; consecutive events of one stream go in one
// append. Import then reads every appended event back and fails unless its stored hash equals
// the exported one.
//
// On error the store holds the events appended before it; start again with an empty store.
func Import(ctx context.Context, store eventstore.Store, r io.Reader, opts ImportOptions) (ImportResult, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return ImportResult{}, fmt.Errorf("audit: import: %w", err)
	}
	if !head.IsZero() {
		return ImportResult{}, fmt.Errorf("%w (its head is at position %s); import needs an empty store", ErrNotEmpty, head)
	}
	im := &importer{store: store, progress: opts.Progress}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	dec.DisallowUnknownFields()
	for line := 1; ; line++ {
		x := new(exportedEvent) // fresh each time: a batch keeps the earlier lines' Data
		if err := dec.Decode(x); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return im.result, fmt.Errorf("audit: import: line %d: %w", line, err)
		}
		if err := im.add(ctx, line, x); err != nil {
			return im.result, fmt.Errorf("audit: import: %w", err)
		}
	}
	if err := im.flush(ctx); err != nil {
		return im.result, fmt.Errorf("audit: import: %w", err)
	}
	if err := im.readBack(ctx, true); err != nil {
		return im.result, fmt.Errorf("audit: import: %w", err)
	}
	return im.result, nil
}

type importer struct {
	store    eventstore.Store
	progress func(done uint64)
	result   ImportResult

	// The run of consecutive events of one stream not yet appended.
	stream    string
	firstLine int
	batch     []eventstore.EventData
	exported  []*exportedEvent
	bytes     int

	// Events appended but not yet read back, in append order, and where to read from.
	pending  []pendingHash
	readFrom eventstore.Position
}

type pendingHash struct {
	line    int
	stream  string
	version uint64
	hash    eventstore.Hash
}

func (im *importer) add(ctx context.Context, line int, x *exportedEvent) error {
	data := []byte(x.Data)
	switch {
	case x.Data != nil && x.DataBase64 != nil:
		return fmt.Errorf("line %d: both data and data_base64", line)
	case x.DataBase64 != nil:
		data = x.DataBase64
	case x.Data == nil:
		return fmt.Errorf("line %d: no data", line)
	}
	if x.RecordedAt.IsZero() {
		// The store would stamp its own time and the hash could not match.
		return fmt.Errorf("line %d: no recorded_at", line)
	}
	event := eventstore.EventData{ID: x.ID, Type: x.Type, Data: data, Metadata: x.Metadata, RecordedAt: x.RecordedAt}
	size := eventstore.AppendSize(event)
	if len(im.batch) > 0 {
		last := im.exported[len(im.exported)-1]
		if x.Stream != im.stream || x.Version != last.Version+1 ||
			len(im.batch) >= importBatchEvents || im.bytes+size > eventstore.MaxAppendSize {
			if err := im.flush(ctx); err != nil {
				return err
			}
		}
	}
	if len(im.batch) == 0 {
		im.stream, im.firstLine = x.Stream, line
	}
	im.batch = append(im.batch, event)
	im.exported = append(im.exported, x)
	im.bytes += size
	return nil
}

// flush appends the pending run at its exported versions.
func (im *importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	first, last := im.exported[0], im.exported[len(im.exported)-1]
	expected := eventstore.NoStream()
	if first.Version > 0 {
		expected = eventstore.Exact(first.Version - 1)
	}
	res, err := im.store.Append(ctx, im.stream, expected, im.batch...)
	if err != nil {
		return fmt.Errorf("line %d: append %q from version %d: %w", im.firstLine, im.stream, first.Version, err)
	}
	if res.Version != last.Version {
		// An append that reports success without reaching the exported version was taken for
		// a retry of events already stored: the export repeats event ids.
		return fmt.Errorf("line %d: append %q from version %d ended at version %d, not %d; does the export repeat an event?",
			im.firstLine, im.stream, first.Version, res.Version, last.Version)
	}
	for i, x := range im.exported {
		im.pending = append(im.pending, pendingHash{line: im.firstLine + i, stream: x.Stream, version: x.Version, hash: x.Hash})
	}
	im.result.Events += uint64(len(im.batch))
	im.result.Position = res.Position
	clear(im.exported) // let the appended lines go
	im.batch, im.exported, im.bytes = im.batch[:0], im.exported[:0], 0
	if im.progress != nil {
		im.progress(im.result.Events)
	}
	if len(im.pending) >= readBackBatch {
		// Wait only when far behind: the store may hold back fresh events for a moment (a
		// PostgreSQL reader waits for older transactions still running).
		return im.readBack(ctx, len(im.pending) >= 4*readBackBatch)
	}
	return nil
}

// readBackPoll is how long readBack waits before asking again for events the store does not
// show yet.
const readBackPoll = 20 * time.Millisecond

// readBack reads the appended events back in global order and compares each with what the
// export said. With wait it returns only once every pending event was compared.
func (im *importer) readBack(ctx context.Context, wait bool) error {
	done := 0
	defer func() { im.pending = append(im.pending[:0], im.pending[done:]...) }()
	for done < len(im.pending) {
		events, err := im.store.ReadAll(ctx, im.readFrom, min(len(im.pending)-done, readBackBatch))
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		if len(events) == 0 {
			if !wait {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(readBackPoll):
			}
			continue
		}
		for i := range events {
			e, want := &events[i], im.pending[done]
			if e.Stream != want.stream || e.Version != want.version {
				return fmt.Errorf("line %d: the store holds %q version %d where the import appended %q version %d; was it written to during the import?",
					want.line, e.Stream, e.Version, want.stream, want.version)
			}
			if e.Hash != want.hash {
				return fmt.Errorf("line %d: %q version %d: stored hash %s, exported hash %s", want.line, e.Stream, e.Version, e.Hash, want.hash)
			}
			done++
		}
		im.readFrom = events[len(events)-1].Position
	}
	return nil
}
